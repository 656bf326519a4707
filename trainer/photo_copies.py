"""Photo-like copies of a page: what users send instead of clean scans, made the same way for the same seed.

Each condition mimics one way a phone photo differs from the dataset's scans (a rubbing-like inversion, grey, a
tilted shot, yellowed paper, uneven light, one character, a few or a quarter of the page, a phone-quality copy, a
round fan or margins of a mount or wall around the page).
Random parameters come from the seed, the condition and the file name, so every model and every run that asks
for the copies of one file sees identical images. Used to calibrate the temperature and to measure robustness
(`trainer.calibrate`) and by `benchmarks/robustness.py`.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from model_store.images import decode_image
from trainer.characters import character_boxes

JPEG_QUALITY = 90
PAPER_TINT = (1.0, 0.9, 0.7)
LIFTED_BLACK = 40
DARKEST_LIGHT = 0.45
MIN_BLUR = 0.1
CHARACTER_MARGIN = (0.05, 0.3)  # blank kept around a character on each side, as a share of its box
NO_CHARACTER_AREA = 1 / 25  # share of the page cut when no character is found: about one on a typical page
ORIGINAL = "original"

Transform = Callable[[Image.Image, random.Random], Image.Image]


def jpeg(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """`img` as JPEG bytes: what a phone or Telegram hands the bot."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def border_colour(img: Image.Image) -> tuple[int, ...]:
    """Median colour of the outermost pixels: the paper or stone a tilted photo shows around the page."""
    pixels = np.asarray(img)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def tilted(img: Image.Image, rng: random.Random) -> Image.Image:
    """Rotated by 5–12° either way, the corners filled with the page's own border colour."""
    angle = rng.uniform(5, 12) * rng.choice((-1, 1))
    return img.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=border_colour(img))


def yellowed(img: Image.Image, rng: random.Random) -> Image.Image:
    """Old paper: blacks lifted to grey ink, then tinted toward yellow."""
    pixels = np.asarray(img, dtype=np.float32)
    lifted = LIFTED_BLACK + pixels * (255 - LIFTED_BLACK) / 255
    return Image.fromarray(np.clip(lifted * np.array(PAPER_TINT), 0, 255).astype(np.uint8))


def uneven_light(img: Image.Image, rng: random.Random) -> Image.Image:
    """Light falling off linearly across the page in a random direction, from full to DARKEST_LIGHT."""
    direction = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0 : img.height, 0 : img.width].astype(np.float32)
    along = xs * math.cos(direction) + ys * math.sin(direction)
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    light = 1 - (1 - DARKEST_LIGHT) * along
    pixels = np.asarray(img, dtype=np.float32) * light[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def page_crop(area: float) -> Transform:
    """A random crop of `area` of the page with the page's own proportions: fewer characters, same squish."""

    def crop(img: Image.Image, rng: random.Random) -> Image.Image:
        width = max(1, round(img.width * math.sqrt(area)))
        height = max(1, round(img.height * math.sqrt(area)))
        left, top = rng.randint(0, img.width - width), rng.randint(0, img.height - height)
        return img.crop((left, top, left + width, top + height))

    return crop


def one_character(img: Image.Image, rng: random.Random) -> Image.Image:
    """One character of the page with a little blank around it (`trainer.characters`), else a 1/25 part of it."""
    boxes = character_boxes(img)
    if not boxes:
        return page_crop(NO_CHARACTER_AREA)(img, rng)
    left, top, right, bottom = rng.choice(boxes)
    margin = rng.uniform(*CHARACTER_MARGIN)
    dx, dy = round((right - left) * margin), round((bottom - top) * margin)
    return img.crop((max(0, left - dx), max(0, top - dy), min(img.width, right + dx), min(img.height, bottom + dy)))


def low_quality(img: Image.Image, scale: float, blur: float, quality: int) -> Image.Image:
    """`img` as a phone or a forwarded chat photo delivers it: `scale` of the pixels per side, blurred by `blur` px
    (below MIN_BLUR a blur shows nothing and is skipped), saved at JPEG `quality`."""
    small = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    if blur > MIN_BLUR:
        small = small.filter(ImageFilter.GaussianBlur(blur))
    return decode_image(jpeg(small, quality=quality))


def mount_colour(rng: random.Random) -> tuple[int, int, int]:
    """Any flat colour: the silk, card or wall around a work is not a cue to its style."""
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def round_fan(img: Image.Image, rng: random.Random) -> Image.Image:
    """A round fan: the page seen through the ellipse it fills, on a mount of a random colour."""
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, img.width - 1, img.height - 1), fill=255)
    return Image.composite(img, Image.new("RGB", img.size, mount_colour(rng)), mask)


def with_margins(img: Image.Image, rng: random.Random) -> Image.Image:
    """A work photographed on a wall: the page fills 60–90% of each side of the picture, anywhere in it."""
    share = rng.uniform(0.6, 0.9)
    width, height = round(img.width / share), round(img.height / share)
    canvas = Image.new("RGB", (width, height), mount_colour(rng))
    canvas.paste(img, (rng.randint(0, width - img.width), rng.randint(0, height - img.height)))
    return canvas


def mounted(img: Image.Image, rng: random.Random) -> Image.Image:
    """One of the two ways a work sits in a photo with something around it: a round fan or margins."""
    return rng.choice((round_fan, with_margins))(img, rng)


def phone_photo(img: Image.Image, rng: random.Random) -> Image.Image:
    """A low-quality copy: 60% of the pixels per side, slightly blurred, saved at JPEG quality 50."""
    return low_quality(img, 0.6, 0.7, 50)


# `original` is the page only re-encoded: the reference the other conditions are compared with.
CONDITIONS: dict[str, Transform] = {
    ORIGINAL: lambda img, rng: img,
    "inverted": lambda img, rng: ImageOps.invert(img),
    "grey": lambda img, rng: ImageOps.grayscale(img).convert("RGB"),
    "tilted": tilted,
    "yellowed": yellowed,
    "uneven light": uneven_light,
    "few characters": page_crop(1 / 9),
    "one character": one_character,
    "quarter page": page_crop(1 / 4),
    "phone photo": phone_photo,
    "round fan": round_fan,
    "with margins": with_margins,
}

# The conditions that stand for photos: everything but the re-encoded original.
PHOTO_CONDITIONS = tuple(name for name in CONDITIONS if name != ORIGINAL)


def photo_copies(page: Image.Image, file: str, seed: int = 0) -> dict[str, bytes]:
    """Every condition's copy of `page` (RGB, as `decode_image` returns it) as the JPEG bytes the bot would get.

    `file` (the page's path relative to the dataset) and `seed` pick the random parameters, so the copies of
    one file are the same wherever they are made.
    """
    return {
        name: jpeg(transform(page, random.Random(f"{seed}/{name}/{file}"))) for name, transform in CONDITIONS.items()
    }
