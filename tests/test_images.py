"""Decoding what people really send: formats, orientation, transparency, bit depths, and bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_factory import encode, halves, png_header_only, solid, strokes
from PIL import Image

from model_store.images import MAX_BYTES, ImageError, ImageTooLarge, NotAnImage, decode_image


def pixel(img: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    return img.getpixel((x, y))


def close(actual: tuple, expected: tuple, tol: int = 12) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def test_jpeg_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90° clockwise to view
    data = encode(halves((60, 30)), "JPEG", quality=95, exif=exif)
    img = decode_image(data)
    assert img.mode == "RGB" and img.size == (30, 60)
    assert close(pixel(img, 15, 5), (255, 0, 0)) and close(pixel(img, 15, 55), (0, 0, 255))


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {})],
)
def test_common_formats_decode_to_rgb(fmt, params):
    img = decode_image(encode(halves(), fmt, **params))
    assert img.mode == "RGB" and img.size == (60, 30)
    assert close(pixel(img, 5, 5), (255, 0, 0)) and close(pixel(img, 55, 5), (0, 0, 255))


def test_png_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 10, 10))
    rgba.paste((255, 0, 0, 128), (10, 0, 20, 5))
    img = decode_image(encode(rgba))
    assert pixel(img, 2, 2) == (0, 0, 0)
    assert pixel(img, 15, 8) == (255, 255, 255)
    assert close(pixel(img, 15, 2), (255, 127, 127), tol=2)


def test_grey_with_alpha_and_palette_transparency_become_white():
    la = Image.new("LA", (10, 10), (0, 0))
    assert pixel(decode_image(encode(la)), 3, 3) == (255, 255, 255)
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (5, 0, 10, 10))
    img = decode_image(encode(palette, "PNG", transparency=0))
    assert pixel(img, 2, 2) == (255, 255, 255) and pixel(img, 7, 2) == (255, 0, 0)


def test_grayscale_and_cmyk():
    grey = decode_image(encode(solid(90, mode="L"), "JPEG", quality=95))
    assert grey.mode == "RGB" and close(pixel(grey, 3, 3), (90, 90, 90), tol=2)
    cmyk = decode_image(encode(solid((0, 255, 255, 0), mode="CMYK"), "JPEG", quality=95))
    assert cmyk.mode == "RGB" and close(pixel(cmyk, 3, 3), (255, 0, 0))


def test_sixteen_bit_grey_keeps_its_range():
    values = np.array([[0, 32896, 65535]], dtype=np.uint16).repeat(4, axis=0)
    img = decode_image(encode(Image.fromarray(values)))
    assert [pixel(img, x, 0) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_gif_first_frame():
    frames = [solid("red", mode="RGB").convert("P"), solid("blue", mode="RGB").convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert close(pixel(decode_image(data), 3, 3), (255, 0, 0))


@pytest.mark.parametrize(
    ("max_side", "size"),
    [(None, (2400, 1800)), (1000, (2400, 1800)), (512, (1200, 900)), (256, (600, 450)), (200, (300, 225))],
)
def test_big_jpeg_is_decoded_downscaled_never_below_max_side(max_side, size):
    data = encode(strokes((2400, 1800)), "JPEG", quality=85)
    assert decode_image(data, max_side=max_side).size == size


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", NotAnImage),
        (b"hello, this is a text message\n", NotAnImage),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", NotAnImage),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", NotAnImage),
        (png_header_only(9000, 9000), ImageTooLarge),
        (png_header_only(100_000, 100_000), ImageTooLarge),
    ],
    ids=["empty", "text", "pdf", "eps", "bomb-81M-pixels", "bomb-10G-pixels"],
)
def test_bad_input_gets_a_clear_error(data, error):
    with pytest.raises(error) as info:
        decode_image(data)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_not_an_image(fmt):
    data = encode(strokes((300, 200)), fmt)
    with pytest.raises(NotAnImage, match="damaged or incomplete"):
        decode_image(data[: len(data) // 2])


def test_oversized_file_is_refused_before_decoding():
    with pytest.raises(ImageTooLarge, match="20 MB"):
        decode_image(b"\xff\xd8" + b"\0" * MAX_BYTES)


def test_errors_are_value_errors_with_one_base():
    assert issubclass(NotAnImage, ImageError) and issubclass(ImageTooLarge, ImageError)
    assert issubclass(ImageError, ValueError)
