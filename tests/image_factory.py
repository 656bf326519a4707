"""Images made on the spot with Pillow, in the formats and shapes people send to the bot."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    """The bytes of `img` saved as `fmt`."""
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def solid(color: str | tuple, size: tuple[int, int] = (48, 32), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


def halves(size: tuple[int, int] = (60, 30), first: str = "red", second: str = "blue") -> Image.Image:
    """Left half `first`, right half `second`: shows where rotations and crops put things."""
    img = Image.new("RGB", size, first)
    img.paste(second, (size[0] // 2, 0, size[0], size[1]))
    return img


def strokes(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Dark brush-like strokes on light paper with grain: detail at every scale, like a photographed page."""
    rng = np.random.default_rng(seed)
    w, h = size
    paper = 235 + rng.normal(0, 6, (h, w, 1)) + np.array([0, -6, -18])
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y = rng.integers(0, w), rng.integers(0, h)
        dx, dy = rng.integers(-w // 8, w // 8), rng.integers(-h // 8, h // 8)
        draw.line((x, y, x + dx, y + dy), fill=(20, 15, 10), width=int(rng.integers(2, max(3, w // 60))))
    return img


def character_page(
    columns: int = 3, rows: int = 4, cell: int = 100, glyph: int = 48, ruled: bool = False
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A copybook page: `columns` x `rows` glyphs of thick strokes (a box with a cross inside, `glyph` px), each
    centred in its `cell`, on light paper; `ruled` adds a one-pixel grid and diagonals through every cell.
    Returns the page and each glyph's ink box (left, top, right, bottom), column by column."""
    img = Image.new("RGB", (columns * cell, rows * cell), (240, 235, 220))
    draw = ImageDraw.Draw(img)
    if ruled:
        for i in range(columns + 1):
            draw.line((i * cell, 0, i * cell, rows * cell), fill=(200, 60, 60), width=1)
        for j in range(rows + 1):
            draw.line((0, j * cell, columns * cell, j * cell), fill=(200, 60, 60), width=1)
        for i in range(columns):
            for j in range(rows):
                draw.line((i * cell, j * cell, (i + 1) * cell, (j + 1) * cell), fill=(200, 60, 60), width=1)
    boxes = []
    pad = (cell - glyph) // 2
    for i in range(columns):
        for j in range(rows):
            left, top = i * cell + pad, j * cell + pad
            right, bottom = left + glyph, top + glyph
            draw.rectangle((left, top, right - 1, bottom - 1), outline=(20, 15, 10), width=6)
            draw.line((left, (top + bottom) // 2, right - 1, (top + bottom) // 2), fill=(20, 15, 10), width=6)
            boxes.append((left, top, right, bottom))
    return img, boxes


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header declaring width×height, with almost no pixel data: a bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )
