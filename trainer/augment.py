"""Augmentations of our own: ink, paper colour and the size of the characters should not be what the model learns.

Rubbings are light strokes on dark stone, copies are dark ink on white or yellowed paper; when one style
comes mostly as rubbings in the data, polarity and colour become shortcuts that fail on a user's photo.
"""

from __future__ import annotations

import math
import random

import torch
from fastai.vision.all import PILImage, RandTransform, TensorImage
from PIL import Image

from trainer.characters import character_boxes
from trainer.mosaic import MIN_CHARACTERS, mosaic
from trainer.photo_copies import low_quality, mounted, one_character


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


class PageCrop(RandTransform):
    """Training only: with probability `p`, a random part of the page, from a few characters to all of it.

    Whole pages squished to 256 px make the number of characters per image a cue, and a photo of one or two
    characters looks like nothing seen in training. The crop keeps the page's proportions (within
    `max_ratio`) so that the later squish distorts strokes as it does for whole pages at inference.
    """

    order = 0  # on the decoded page, before Resize (1)
    split_idx = 0

    def __init__(self, min_scale: float = 1.0, p: float = 0.5, max_ratio: float = 4 / 3) -> None:
        super().__init__(p=p)
        self.min_scale, self.max_ratio = min_scale, max_ratio
        self.box: tuple[int, int, int, int] | None = None

    def before_call(self, b, split_idx: int) -> None:
        super().before_call(b, split_idx)
        image = b[0] if isinstance(b, tuple) else b
        width, height = image.size
        area = random.uniform(self.min_scale, 1.0)
        ratio = math.exp(random.uniform(-math.log(self.max_ratio), math.log(self.max_ratio)))
        crop_w = max(1, min(width, round(width * math.sqrt(area * ratio))))
        crop_h = max(1, min(height, round(height * math.sqrt(area / ratio))))
        left = random.randint(0, width - crop_w)
        top = random.randint(0, height - crop_h)
        self.box = (left, top, left + crop_w, top + crop_h)

    def encodes(self, x: PILImage) -> PILImage:
        return x.crop(self.box)


class CharacterCrop(RandTransform):
    """Training only: with probability `p`, one character of the page (`trainer.characters`), or a 1/25 part of it.

    Users photograph a single character more than anything else, and `PageCrop` rarely gets that small: a
    character's own box keeps its proportions (wide clerical, tall seal), which a crop of the page's shape loses.
    """

    order = 0  # on the decoded page, after PageCrop (same order, listed first), before Resize (1)
    split_idx = 0

    def encodes(self, x: PILImage) -> PILImage:
        return PILImage(one_character(x, random.Random(random.random())))


class CharacterMosaic(RandTransform):
    """Training only: with probability `p`, the page's own characters in a random order as a 3 × 3 page
    (`trainer.mosaic`); pages with fewer than `MIN_CHARACTERS` found stay as they are.

    A style that mostly comes in one layout (regular script in ruled copybooks) teaches the layout; a page of the
    same characters without it leaves only the strokes to learn from.
    """

    order = 0  # on the decoded page, before PageCrop (same order, listed first), before Resize (1)
    split_idx = 0

    def encodes(self, x: PILImage) -> PILImage:
        boxes = character_boxes(x)
        if len(boxes) < MIN_CHARACTERS:
            return x
        return PILImage(mosaic(x, random.sample(boxes, len(boxes)), max(x.size)))


class LowQualityCopy(RandTransform):
    """Training only: with probability `p`, the image as a phone or a forwarded chat photo delivers it.

    The seed pages are clean scans at up to 512 px; users send smaller, softer, re-compressed pictures that the
    runtime scales up, so fine stroke edges (the texture a model can lean on) are not always there.
    """

    order = 2  # after Resize (1), on the image the model will see
    split_idx = 0

    def __init__(self, p: float = 0.0, scale: tuple[float, float] = (0.35, 0.9), max_blur: float = 1.0) -> None:
        super().__init__(p=p)
        self.scale, self.max_blur = scale, max_blur
        self.factor, self.blur, self.quality = 1.0, 0.0, 90

    def before_call(self, b, split_idx: int) -> None:
        super().before_call(b, split_idx)
        self.factor = random.uniform(*self.scale)
        self.blur = random.uniform(0.0, self.max_blur)
        self.quality = random.randint(30, 90)

    def encodes(self, x: PILImage) -> PILImage:
        copy = low_quality(x, self.factor, self.blur, self.quality)
        return PILImage(copy.resize(x.size, Image.BILINEAR))


class Mount(RandTransform):
    """Training only: with probability `p`, the page as a round fan or with margins, on a mount of any colour.

    Works are photographed framed, mounted or as fans; with only edge-to-edge scans in training, a round outline
    or a coloured border pulls the prediction toward whichever style came that way most often.
    """

    order = 0  # on the decoded page, after PageCrop (same order, listed first), before Resize (1)
    split_idx = 0

    def encodes(self, x: PILImage) -> PILImage:
        return PILImage(mounted(x, random.Random(random.random())))
