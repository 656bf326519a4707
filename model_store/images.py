"""Safe decoding of the images people really send, into the RGB image the preprocessing expects.

Only a few raster formats are opened at all (Pillow's EPS plugin, for one, would start Ghostscript), the
pixel count is checked from the header before any pixel is decoded, and big JPEGs are decoded at a reduced
DCT scale that still leaves at least `max_side` pixels on each side.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 64_000_000
# JPEG includes MPO, the multi-picture JPEG some phones write.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
WHITE = (255, 255, 255)


class ImageError(ValueError):
    """An image we cannot classify; `str(exc)` is a one-line message fit for a user."""


class NotAnImage(ImageError):
    """Empty, not an image, an unsupported format, or truncated/corrupt data."""


class ImageTooLarge(ImageError):
    """Over MAX_BYTES, or more pixels than MAX_PIXELS (a decompression bomb)."""


def _open(data: bytes) -> Image.Image:
    if not data:
        raise NotAnImage("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImageTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("The image has too many pixels.") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage("This is not an image I can read (JPEG, PNG, WebP, GIF, BMP or TIFF).") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise NotAnImage("The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"The image has too many pixels ({width}×{height}; at most {MAX_PIXELS // 1_000_000} million)."
        )
    return img


def _sixteen_bit_to_l(img: Image.Image) -> Image.Image:
    """Pillow's own conversion clips 16-bit grey at 255; scale the full range down instead."""
    values = np.asarray(img).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as RGB: transparency composited on white, 16-bit grey scaled to 8 bits."""
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        img = _sixteen_bit_to_l(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def decode_image(data: bytes, *, max_side: int | None = None) -> Image.Image:
    """Decode image bytes to an upright RGB image; ImageError subclasses for anything unusable.

    `max_side` says how many pixels per side the caller will use at most: a JPEG bigger than twice that
    is decoded at 1/2, 1/4 or 1/8 scale, never below `max_side` on either side.
    """
    img = _open(data)
    try:
        if max_side and img.format in ("JPEG", "MPO"):
            img.draft("RGB", (max_side, max_side))
        img.seek(0)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        return to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("The image has too many pixels.") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise NotAnImage("The image is damaged or incomplete.") from exc
