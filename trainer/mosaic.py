"""A page of a picture's own characters: its layout (a book's ruled grid, its margins, a rubbing's stone) replaced
by a plain 3 × 3 grid, so that only the characters' strokes tell the style.

Layout is a cue a model trained on whole pages can lean on instead of the strokes: light-on-dark clerical pages in
ruled copybooks are read as regular script (docs/experiments.md, sessions 11 and 12). Used as a training
augmentation (`trainer.augment.CharacterMosaic`) and by `benchmarks/mosaic.py` as an inference view.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from trainer.characters import Box, ink_mask

GRID = 3
MIN_CHARACTERS = 4  # fewer distinct characters make the mosaic mostly repeats: a tiling of one or two
MARGIN = 0.1  # of a character box's longer side, kept around it in its cell


def paper_colour(img: Image.Image) -> tuple[int, ...]:
    """The median RGB of the pixels that are not ink (on a copy at most 128 px a side, which is enough for a
    median): the background a cut-out character sits on."""
    small = img.reduce(max(1, max(img.size) // 128))
    pixels = np.asarray(small)[~ink_mask(small)]
    return tuple(int(v) for v in np.median(pixels, axis=0)) if len(pixels) else (255, 255, 255)


def mosaic(img: Image.Image, boxes: list[Box], side: int) -> Image.Image:
    """GRID × GRID square cells of side // GRID pixels, each holding one character of `boxes` (with a margin)
    centred at its own aspect on `img`'s paper colour: the boxes in their order, spread evenly when there are
    more than cells, repeated when fewer."""
    n, cell = GRID, side // GRID
    if len(boxes) > n * n:
        boxes = [boxes[round(i)] for i in np.linspace(0, len(boxes) - 1, n * n)]
    canvas = Image.new("RGB", (cell * n, cell * n), paper_colour(img))
    for i in range(n * n):
        left, top, right, bottom = boxes[i % len(boxes)]
        pad = round(MARGIN * max(right - left, bottom - top))
        char = img.crop(
            (max(0, left - pad), max(0, top - pad), min(img.width, right + pad), min(img.height, bottom + pad))
        )
        scale = cell / max(char.size)
        char = char.resize((max(1, round(char.width * scale)), max(1, round(char.height * scale))), Image.BILINEAR)
        row, col = divmod(i, n)
        canvas.paste(char, (col * cell + (cell - char.width) // 2, row * cell + (cell - char.height) // 2))
    return canvas
