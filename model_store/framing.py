"""Which second view a picture gets: model.json's framing detector and the tiled view it chooses, and the mosaic of
a page's own characters.

A model trained on pages reads one character best when it is shown as a page of it; a page tiled that way loses.
The detector (fitted by `trainer.framing`) tells the two framings apart from the network's own features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from model_store.characters import Box, ink_mask


def tiled(img: Image.Image, n: int) -> Image.Image:
    """`img` repeated n × n times side by side: one character becomes a page of it, the view models trained on
    pages read best."""
    canvas = Image.new(img.mode, (img.width * n, img.height * n))
    for i in range(n):
        for j in range(n):
            canvas.paste(img, (i * img.width, j * img.height))
    return canvas


@dataclass(frozen=True)
class Framing:
    """Whether a picture shows one or a few characters rather than a page: a linear read of the network's own
    features (fitted by `trainer.framing`). Such pictures get the image tiled into a page as their second view
    instead of the crop, which would cut their one character apart."""

    weights: np.ndarray
    bias: float
    tiles: int

    @classmethod
    def from_metadata(cls, meta: dict) -> Framing | None:
        """model.json's `framing` block, or None for a model without one; ValueError when it is malformed."""
        block = meta.get("framing")
        if block is None:
            return None
        weights = np.asarray(block["weights"], dtype=np.float64)
        tiles = block["tiles"]
        if weights.ndim != 1 or not len(weights) or not np.isfinite(weights).all():
            raise ValueError("'framing.weights' must be a list of numbers")
        if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 2:
            raise ValueError("'framing.tiles' must be an integer >= 2")
        return cls(weights=weights, bias=float(block["bias"]), tiles=tiles)

    def few_characters(self, features: np.ndarray) -> np.ndarray:
        """One bool per row of `features` [N, F]: the logistic read says more likely a few characters than a page."""
        return features.astype(np.float64) @ self.weights + self.bias > 0


def paper_colour(img: Image.Image) -> tuple[int, ...]:
    """The median RGB of the pixels that are not ink (on a copy at most 128 px a side, which is enough for a
    median): the background a cut-out character sits on."""
    small = img.reduce(max(1, max(img.size) // 128))
    pixels = np.asarray(small)[~ink_mask(small)]
    return tuple(int(v) for v in np.median(pixels, axis=0)) if len(pixels) else (255, 255, 255)


@dataclass(frozen=True)
class Mosaic:
    """A page of the picture's own characters: the second view for pictures of many characters. Layout cues of a
    whole page (a book's grid, its margins, a rubbing's stone) stop mattering, and the strokes are seen at a size
    the model reads well (docs/experiments.md, session 11)."""

    grid: int
    min_characters: int
    # of a character box's longer side, kept around it in its cell
    margin: float = 0.1

    @classmethod
    def from_metadata(cls, meta: dict) -> Mosaic | None:
        """model.json's `mosaic` block, or None for a model without one; ValueError when it is malformed."""
        block = meta.get("mosaic")
        if block is None:
            return None
        if not isinstance(block, dict) or not {"grid", "min_characters"} <= block.keys():
            raise ValueError("'mosaic' must be {'grid': n, 'min_characters': k}")
        grid, least = block["grid"], block["min_characters"]
        for name, value in (("grid", grid), ("min_characters", least)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'mosaic.{name}' must be an integer >= 1")
        return cls(grid=grid, min_characters=least)

    def applies(self, boxes: list[Box]) -> bool:
        """Whether enough characters were found for a mosaic of mostly different ones."""
        return len(boxes) >= self.min_characters

    def draw(self, img: Image.Image, boxes: list[Box], side: int) -> Image.Image:
        """grid × grid square cells of side // grid pixels, each holding one character of `boxes` (with a margin)
        centred at its own aspect on `img`'s paper colour: the boxes in reading order, spread evenly when there
        are more than cells, repeated when fewer."""
        n, cell = self.grid, side // self.grid
        if len(boxes) > n * n:
            boxes = [boxes[round(i)] for i in np.linspace(0, len(boxes) - 1, n * n)]
        canvas = Image.new("RGB", (cell * n, cell * n), paper_colour(img))
        for i in range(n * n):
            left, top, right, bottom = boxes[i % len(boxes)]
            pad = round(self.margin * max(right - left, bottom - top))
            box = (max(0, left - pad), max(0, top - pad), min(img.width, right + pad), min(img.height, bottom + pad))
            char = img.crop(box)
            scale = cell / max(char.size)
            char = char.resize((max(1, round(char.width * scale)), max(1, round(char.height * scale))), Image.BILINEAR)
            row, col = divmod(i, n)
            canvas.paste(char, (col * cell + (cell - char.width) // 2, row * cell + (cell - char.height) // 2))
        return canvas
