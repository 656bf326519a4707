"""The one definition of the training's preprocessing, so serving sees exactly what the model was trained on.

It mirrors fastai's validation-time `Resize` on a PIL image ("squish": the whole image to S×S; "crop": the
centre square, then S×S), followed by `IntToFloatTensor` and `Normalize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

RESIZE_METHODS = ("squish", "crop")
RESAMPLE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def _triple(name: str, value: Any) -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"{name!r} must be three numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name!r} must be three numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the model's input tensor."""

    size: int
    resize_method: str
    resample: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            raise ValueError("'input_size' must be an integer > 0")
        if self.resize_method not in RESIZE_METHODS:
            raise ValueError(f"'resize_method' must be one of {', '.join(RESIZE_METHODS)}")
        if self.resample not in RESAMPLE_FILTERS:
            raise ValueError(f"'resample' must be one of {', '.join(RESAMPLE_FILTERS)}")
        if not all(s > 0 for s in self.std):
            raise ValueError("'std' must be positive")

    @classmethod
    def from_metadata(cls, meta: dict) -> Preprocessing:
        """Read the preprocessing fields of `model.json`; ValueError/KeyError when they are wrong."""
        return cls(
            size=meta["input_size"],
            resize_method=meta.get("resize_method", "squish"),
            resample=meta.get("resample", "bilinear"),
            mean=_triple("mean", meta["mean"]),
            std=_triple("std", meta["std"]),
        )


def centre_square(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """fastai's validation crop box, with its own float arithmetic so the pixels match."""
    m = width / size if width / size < height / size else height / size
    side = int(m * size)
    left, top = int(0.5 * (width - side)), int(0.5 * (height - side))
    return (left, top, left + side, top + side)


def resize(img: Image.Image, prep: Preprocessing) -> Image.Image:
    """Resize an RGB image to S×S the way the training's validation pipeline did."""
    if prep.resize_method == "crop":
        img = img.crop(centre_square(img.width, img.height, prep.size))
    return img.resize((prep.size, prep.size), RESAMPLE_FILTERS[prep.resample])


def normalise(img: Image.Image, prep: Preprocessing) -> np.ndarray:
    """An S×S RGB image as the model's float32 [3, S, S] input: (rgb/255 - mean) / std, channels first."""
    std = np.asarray(prep.std, dtype=np.float32)[:, None, None]
    mean = np.asarray(prep.mean, dtype=np.float32)[:, None, None]
    # Transposing the uint8 pixels first makes one contiguous float copy, then scale and shift in place.
    chw = np.asarray(img).transpose(2, 0, 1).astype(np.float32, order="C")
    chw *= 1.0 / (255.0 * std)
    chw -= mean / std
    return chw


def to_tensor(img: Image.Image, prep: Preprocessing) -> np.ndarray:
    """An RGB image of any size as the model's float32 [3, S, S] input."""
    return normalise(resize(img, prep), prep)
