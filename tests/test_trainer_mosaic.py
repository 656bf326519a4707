"""The mosaic: a page of the picture's own characters, without the page's layout."""

from __future__ import annotations

import random

import numpy as np
from fastai.vision.all import PILImage
from image_factory import character_page
from PIL import Image

from trainer.augment import CharacterMosaic
from trainer.characters import character_boxes, ink_mask
from trainer.mosaic import GRID, mosaic

PAPER = (240, 235, 220)


def cells(img: Image.Image) -> list[Image.Image]:
    side = img.width // GRID
    return [img.crop((c * side, r * side, (c + 1) * side, (r + 1) * side)) for r in range(GRID) for c in range(GRID)]


def inked(page: Image.Image, colours: dict[tuple[int, int, int, int], tuple[int, int, int]]) -> Image.Image:
    """`page` with the ink inside each box of `colours` in that box's colour, so that a cell shows which it holds."""
    pixels = np.asarray(page).copy()
    ink = ink_mask(page)
    for (left, top, right, bottom), colour in colours.items():
        pixels[top:bottom, left:right][ink[top:bottom, left:right]] = colour
    return Image.fromarray(pixels)


def test_each_cell_holds_one_found_character_on_the_paper_colour():
    page, _ = character_page(columns=4, rows=5)
    drawn = mosaic(page, character_boxes(page), 96)
    assert drawn.size == (96, 96)
    for cell in cells(drawn):
        ink = ink_mask(cell)
        assert 0.05 < ink.mean() < 0.6, "a whole glyph, scaled to its cell"
        assert not ink[0].any() and not ink[-1].any() and not ink[:, 0].any(), "with blank around it"
        assert cell.getpixel((0, 0)) == PAPER


def test_more_characters_than_cells_are_spread_and_fewer_repeated():
    page, _ = character_page(columns=2, rows=1)
    boxes = character_boxes(page)
    assert len(boxes) == 2
    drawn = cells(mosaic(page, boxes, 90))
    assert np.array_equal(np.asarray(drawn[0]), np.asarray(drawn[2]))
    assert np.array_equal(np.asarray(drawn[1]), np.asarray(drawn[3]))

    page, _ = character_page(columns=4, rows=5)
    boxes = character_boxes(page)
    drawn = cells(mosaic(inked(page, {boxes[0]: (20, 15, 160), boxes[-1]: (160, 15, 20)}), boxes, 90))

    def has(cell: Image.Image, colour: tuple[int, int, int]) -> bool:
        return bool((np.abs(np.asarray(cell).astype(int) - colour).sum(axis=2) < 60).any())

    assert has(drawn[0], (20, 15, 160)) and has(drawn[-1], (160, 15, 20)), "the first and the last found"
    assert not any(has(c, (20, 15, 160)) or has(c, (160, 15, 20)) for c in drawn[1:-1])


def test_character_mosaic_redraws_pages_in_training_only():
    random.seed(3)
    page, boxes = character_page(columns=4, rows=5)
    page = PILImage(inked(page, {box: (10 * i, 15, 10) for i, box in enumerate(boxes)}))  # the order shows
    outs = [CharacterMosaic(p=1.0)((page,), split_idx=0)[0] for _ in range(5)]
    assert all(isinstance(o, PILImage) and o.size == (498, 498) for o in outs), "3 x 3 cells at the page's size"
    assert len({np.asarray(o).tobytes() for o in outs}) > 1, "the characters come in a random order"
    assert all(0.05 < ink_mask(c).mean() < 0.6 for o in outs for c in cells(o)), "a character in every cell"
    assert CharacterMosaic(p=1.0)((page,), split_idx=1)[0] is page
    assert CharacterMosaic(p=0.0)((page,), split_idx=0)[0] is page


def test_character_mosaic_leaves_pages_of_too_few_characters():
    page = PILImage(character_page(columns=3, rows=1)[0])
    assert CharacterMosaic(p=1.0)((page,), split_idx=0)[0] is page
