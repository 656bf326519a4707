"""The served model's and the candidate's confusion matrices side by side, drawn with Pillow for sendPhoto.

The bot process has no matplotlib (it is not in the `bot` extra); a few rectangles and numbers are enough.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bot.gate import Verdict
from model_store.evaluate import Evaluation

CELL = 84
LABEL_WIDTH = 96
HEADER = 64
GAP = 40
PAD = 16
FONT_SIZE = 14
INK = (20, 20, 20)
DARK = (31, 78, 160)


def _shade(fraction: float) -> tuple[int, int, int]:
    """White for 0, deep blue for 1: a cell's share of its true class."""
    return tuple(round(255 + fraction * (c - 255)) for c in DARK)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    return text


def _in_order(result: Evaluation, order: list[str]) -> tuple[list[str], np.ndarray]:
    """Classes and confusion matrix in `order` where the classes are the same, so both panels line up."""
    if sorted(result.classes) != sorted(order):
        return result.classes, result.confusion
    index = [result.classes.index(c) for c in order]
    return order, result.confusion[np.ix_(index, index)]


def _panel(
    draw: ImageDraw.ImageDraw, left: int, title: str, result: Evaluation, order: list[str], font: ImageFont.ImageFont
) -> None:
    classes, matrix = _in_order(result, order)
    grid_left, grid_top = left + LABEL_WIDTH, PAD + HEADER
    draw.text((left, PAD), title, font=font, fill=INK)
    draw.text((grid_left, PAD + 22), "predicted", font=font, fill=INK)
    rows = matrix.sum(axis=1)
    for j, name in enumerate(classes):
        x = grid_left + j * CELL + 4
        draw.text((x, grid_top - 20), _fit(draw, name, font, CELL - 8), font=font, fill=INK)
    for i, name in enumerate(classes):
        y = grid_top + i * CELL
        draw.text((left, y + CELL // 2 - 8), _fit(draw, name, font, LABEL_WIDTH - 8), font=font, fill=INK)
        for j in range(len(classes)):
            fraction = float(matrix[i, j] / rows[i]) if rows[i] else 0.0
            box = (grid_left + j * CELL, y, grid_left + (j + 1) * CELL, y + CELL)
            draw.rectangle(box, fill=_shade(fraction), outline=(200, 200, 200))
            text = str(int(matrix[i, j]))
            width = draw.textlength(text, font=font)
            colour = (255, 255, 255) if fraction > 0.5 else INK
            draw.text((box[0] + (CELL - width) / 2, y + CELL // 2 - 8), text, font=font, fill=colour)


def confusion_png(verdict: Verdict) -> bytes:
    """A PNG of both matrices (rows: true class, columns: predicted), each titled with version and accuracy."""
    font = ImageFont.load_default(size=FONT_SIZE)
    panels = [
        (f"{verdict.current_version} (served): {verdict.current.accuracy:.1%}", verdict.current),
        (f"{verdict.candidate_version} (candidate): {verdict.candidate.accuracy:.1%}", verdict.candidate),
    ]
    widths = [LABEL_WIDTH + CELL * len(result.classes) for _, result in panels]
    height = PAD + HEADER + CELL * max(len(result.classes) for _, result in panels) + PAD + 20
    image = Image.new("RGB", (PAD + sum(widths) + GAP * (len(panels) - 1) + PAD, height), "white")
    draw = ImageDraw.Draw(image)
    left = PAD
    for (title, result), width in zip(panels, widths, strict=True):
        _panel(draw, left, title, result, verdict.current.classes, font)
        left += width + GAP
    footer = f"rows: true class · {verdict.candidate.n} evaluation images"
    draw.text((PAD, height - PAD - 14), footer, font=font, fill=INK)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
