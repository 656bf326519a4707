"""Single characters cut out of a page: the view users send most, and one that whole-page scans never show.

Pages of this data are columns or rows of characters with blank space between them. The ink's projection on
one axis finds the columns, and the projection of each column finds its characters, as in classic document
layout analysis. Ruled grid lines would bridge every gap: thin lines go with a morphological opening (a brush
stroke is wider than a printed rule), and rows and columns that are mostly ink are cleared. Running hands,
rubbings with touching characters and photos of objects give few or no boxes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]

OPENING = 3  # pixels: ink thinner than this (rules, grid lines, dashes) is not writing
MIN_CONTRAST = 32  # grey levels between the darkest and lightest pixel; below it there is no ink to find
LINE_INK = 0.5  # a pixel row or column with more ink than this share is a ruled line, not writing
COLUMN_INK = 0.01  # ink pixels a pixel column needs, as a share of the page's height, to count as writing
ROW_INK = 0.02  # and a pixel row within a column, as a share of the column's width
GAP = 0.01  # blank run, as a share of the page's short side, that separates two characters
MIN_SIDE = 0.08  # a character box spans at least this share of the short side (smaller: too few pixels)
MAX_SIDE = 0.6  # and at most this share: larger boxes are several characters with no gap between them
MAX_ASPECT = 2.5
MIN_INK = 0.05  # share of a box's pixels that are ink: emptier boxes are seals' edges or specks


def ink_mask(img: Image.Image) -> np.ndarray:
    """Ink pixels, by Otsu's threshold on grey levels; ink is the smaller side (dark ink or light rubbing)."""
    grey = np.asarray(img.convert("L"))
    if int(grey.max()) - int(grey.min()) < MIN_CONTRAST:
        return np.zeros(grey.shape, dtype=bool)
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(hist) / hist.sum()
    mean = np.cumsum(hist * np.arange(256)) / hist.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean[-1] * weight - mean) ** 2 / (weight * (1 - weight))
    dark = grey <= int(np.nanargmax(between))
    return dark if dark.mean() < 0.5 else ~dark


def _spans(profile: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """[start, end) runs where `profile` is positive, joined across blanks shorter than `min_gap`."""
    idx = np.flatnonzero(profile > 0)
    if not len(idx):
        return []
    breaks = np.flatnonzero(np.diff(idx) - 1 >= min_gap)
    starts = np.concatenate([idx[:1], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks] + 1, idx[-1:] + 1])
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _opened(mask: np.ndarray, size: int) -> np.ndarray:
    """`mask` eroded, then dilated, by a size × size square, edges replicated: what Pillow's MinFilter and
    MaxFilter give a binary image, at a fraction of their cost."""

    def rank(a: np.ndarray, pick: np.ufunc) -> np.ndarray:
        padded = np.pad(a, size // 2, mode="edge")
        h, w = a.shape
        windows = [padded[i : i + h, j : j + w] for i in range(size) for j in range(size)]
        return pick.reduce(windows)

    return rank(rank(mask, np.logical_and), np.logical_or)


def character_boxes(img: Image.Image) -> list[Box]:
    """(left, top, right, bottom) of each character found on the page, columns first."""
    ink = _opened(ink_mask(img), OPENING)
    ink[ink.mean(axis=1) > LINE_INK, :] = False
    ink[:, ink.mean(axis=0) > LINE_INK] = False
    height, width = ink.shape
    short = min(height, width)
    min_gap = max(2, round(short * GAP))
    columns = ink.sum(axis=0)
    columns[columns < max(1, COLUMN_INK * height)] = 0
    boxes = []
    for left, right in _spans(columns, min_gap):
        rows = ink[:, left:right].sum(axis=1)
        rows[rows < max(1, ROW_INK * (right - left))] = 0
        for top, bottom in _spans(rows, min_gap):
            w, h = right - left, bottom - top
            if min(w, h) < short * MIN_SIDE or max(w, h) > short * MAX_SIDE or max(w / h, h / w) > MAX_ASPECT:
                continue
            if ink[top:bottom, left:right].mean() >= MIN_INK:
                boxes.append((left, top, right, bottom))
    return boxes
