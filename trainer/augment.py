"""Augmentations of our own: ink and paper colour should not be what the model learns.

Rubbings are light strokes on dark stone, copies are dark ink on white or yellowed paper; when one style
comes mostly as rubbings in the data, polarity and colour become shortcuts that fail on a user's photo.
"""

from __future__ import annotations

import torch
from fastai.vision.all import RandTransform, TensorImage


class InkAndPaper(RandTransform):
    """Per image in a training batch: turn grey with probability `p_grey`, invert with `p_invert`."""

    order = 90  # after the lighting changes (40), before Normalize (99)
    split_idx = 0

    def __init__(self, p_grey: float = 0.0, p_invert: float = 0.0) -> None:
        super().__init__(p=1.0)
        self.p_grey, self.p_invert = p_grey, p_invert

    def encodes(self, x: TensorImage) -> TensorImage:
        n = x.shape[0]
        grey = (torch.rand(n, 1, 1, 1, device=x.device) < self.p_grey).to(x.dtype)
        x = x * (1 - grey) + x.mean(dim=1, keepdim=True) * grey
        invert = (torch.rand(n, 1, 1, 1, device=x.device) < self.p_invert).to(x.dtype)
        return x * (1 - invert) + (1 - x) * invert
