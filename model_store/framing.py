"""Which second view a picture gets: model.json's framing detector, and the tiled view it chooses.

A model trained on pages reads one character best when it is shown as a page of it; a page tiled that way loses.
The detector (fitted by `trainer.framing`) tells the two framings apart from the network's own features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


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
