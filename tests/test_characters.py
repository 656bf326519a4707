"""Finding single characters on a page by the blank space around them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from image_factory import character_page, strokes
from PIL import Image, ImageFilter, ImageOps

from trainer.characters import _opened, character_boxes, ink_mask
from trainer.photo_copies import one_character


def _close(found, expected, tolerance=3):
    return all(abs(a - b) <= tolerance for a, b in zip(found, expected, strict=True))


@pytest.mark.parametrize("ruled", [False, True])
def test_every_character_of_a_copybook_page_is_found_once(ruled):
    page, glyphs = character_page(ruled=ruled)
    found = character_boxes(page)
    assert len(found) == len(glyphs)
    assert all(_close(f, g) for f, g in zip(found, glyphs, strict=True)), (found, glyphs)


def test_a_rubbing_light_on_dark_gives_the_same_characters():
    page, _ = character_page(columns=2, rows=3)
    assert ink_mask(ImageOps.invert(page)).sum() == ink_mask(page).sum()
    assert character_boxes(ImageOps.invert(page)) == character_boxes(page)


@pytest.mark.parametrize(
    "page",
    [
        Image.new("RGB", (200, 300), "white"),
        Image.new("RGB", (200, 300), (120, 90, 60)),
        character_page(columns=5, rows=6, cell=48, glyph=48)[0],
    ],
    ids=["blank", "flat colour", "characters touching each other"],
)
def test_pages_without_separate_characters_give_none(page):
    assert character_boxes(page) == []


def test_characters_too_small_to_read_are_skipped():
    page, _ = character_page(columns=8, rows=8, cell=20, glyph=12)
    assert character_boxes(page.resize((800, 800))) == []


def test_one_character_is_a_glyph_with_a_little_blank_around_it():
    page, _ = character_page()
    for seed in range(10):
        crop = one_character(page, random.Random(seed))
        assert 48 < crop.width <= 48 * 1.6 + 1 and 48 < crop.height <= 48 * 1.6 + 1
        ink = ink_mask(crop)
        assert ink[: crop.height // 2].any() and not ink[0].any() and not ink[:, 0].any(), "whole, not cut"


def test_one_character_falls_back_to_a_small_part_of_a_page_without_characters():
    page = strokes((300, 400), seed=1).crop((0, 0, 300, 10)).resize((300, 400))
    assert character_boxes(page) == []
    crop = one_character(page, random.Random(0))
    assert crop.size == (60, 80)
    assert np.array_equal(np.asarray(crop), np.asarray(one_character(page, random.Random(0))))


@pytest.mark.parametrize("shape", [(7, 9), (64, 48), (120, 200)])
def test_the_opening_is_pillows_min_then_max_filter(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) < 0.6
    pillow = Image.fromarray(mask.astype(np.uint8) * 255)
    expected = np.asarray(pillow.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))) > 0
    assert np.array_equal(_opened(mask, 3), expected)
