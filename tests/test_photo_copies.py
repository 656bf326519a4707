"""Photo-like copies: RGB out, the page's proportions kept, the same seed the same image."""

from __future__ import annotations

import random

import numpy as np
import pytest
from image_factory import strokes

from trainer.photo_copies import CONDITIONS, photo_copies

PAGE = strokes((90, 60))
RESIZED = {"tilted", "one character", "few characters", "quarter page", "phone photo", "with margins"}


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_condition_gives_a_deterministic_rgb_image(name):
    first = CONDITIONS[name](PAGE, random.Random(1))
    again = CONDITIONS[name](PAGE, random.Random(1))
    assert first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(again))
    if name not in RESIZED:
        assert first.size == PAGE.size


@pytest.mark.parametrize(("name", "side"), [("few characters", 1 / 3), ("quarter page", 1 / 2), ("phone photo", 0.6)])
def test_smaller_views_keep_the_page_proportions(name, side):
    assert CONDITIONS[name](PAGE, random.Random(2)).size == (round(90 * side), round(60 * side))


def test_tilted_page_is_rotated_into_a_larger_canvas_of_border_colour():
    tilted = CONDITIONS["tilted"](PAGE, random.Random(3))
    assert tilted.width > PAGE.width and tilted.height > PAGE.height
    corner, paper = np.asarray(tilted)[0, 0], np.median(np.asarray(PAGE)[0], axis=0)
    assert np.abs(corner.astype(int) - paper).max() <= 2


def test_round_fan_keeps_the_middle_and_covers_the_corners_with_one_mount_colour():
    fan = np.asarray(CONDITIONS["round fan"](PAGE, random.Random(4)))
    page = np.asarray(PAGE)
    corners = [fan[0, 0], fan[0, -1], fan[-1, 0], fan[-1, -1]]
    assert all(np.array_equal(c, corners[0]) for c in corners)
    assert np.array_equal(fan[20:40, 30:60], page[20:40, 30:60])


def test_margins_put_the_whole_page_on_a_larger_mount():
    framed = CONDITIONS["with margins"](PAGE, random.Random(5))
    assert PAGE.width / 0.9 - 1 <= framed.width <= PAGE.width / 0.6 + 1
    assert PAGE.height / 0.9 - 1 <= framed.height <= PAGE.height / 0.6 + 1
    pixels, page = np.asarray(framed), np.asarray(PAGE)
    found = [
        (y, x)
        for y in range(framed.height - PAGE.height + 1)
        for x in range(framed.width - PAGE.width + 1)
        if np.array_equal(pixels[y : y + PAGE.height, x : x + PAGE.width], page)
    ]
    assert len(found) == 1, "the page is pasted once, whole"


def test_copies_depend_on_seed_and_file_only():
    copies = photo_copies(PAGE, "kaishu/a.jpg", seed=0)
    assert list(copies) == list(CONDITIONS)
    assert copies == photo_copies(PAGE, "kaishu/a.jpg", seed=0)
    assert copies["tilted"] != photo_copies(PAGE, "kaishu/a.jpg", seed=1)["tilted"]
    assert copies["tilted"] != photo_copies(PAGE, "kaishu/b.jpg", seed=0)["tilted"]
    assert all(blob.startswith(b"\xff\xd8") for blob in copies.values())
