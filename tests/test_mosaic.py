"""The mosaic: a page of the picture's own characters as the runtime's second view for pages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from image_factory import character_page, encode, solid
from PIL import Image
from test_runtime import set_metadata, with_framing

from model_store.characters import character_boxes, ink_mask
from model_store.framing import Mosaic, tiled
from model_store.metadata import ModelError, read_metadata
from model_store.runtime import Classifier, crop_boxes

MOSAIC = {"grid": 3, "min_characters": 4}
PAPER = (240, 235, 220)


def cells(img, n):
    side = img.width // n
    return [img.crop((c * side, r * side, (c + 1) * side, (r + 1) * side)) for r in range(n) for c in range(n)]


def test_each_cell_holds_one_found_character_on_the_paper_colour():
    page, _ = character_page(columns=4, rows=5)
    drawn = Mosaic(**MOSAIC).draw(page, character_boxes(page), 96)
    assert drawn.size == (96, 96)
    for cell in cells(drawn, 3):
        ink = ink_mask(cell)
        assert 0.05 < ink.mean() < 0.6, "a whole glyph, scaled to its cell"
        assert not ink[0].any() and not ink[-1].any() and not ink[:, 0].any(), "with blank around it"
        assert cell.getpixel((0, 0)) == PAPER


def test_more_characters_than_cells_are_spread_and_fewer_repeated():
    page, _ = character_page(columns=2, rows=1)
    boxes = character_boxes(page)
    assert len(boxes) == 2
    drawn = cells(Mosaic(**MOSAIC).draw(page, boxes, 90), 3)
    assert np.array_equal(np.asarray(drawn[0]), np.asarray(drawn[2]))
    assert np.array_equal(np.asarray(drawn[1]), np.asarray(drawn[3]))

    page, _ = character_page(columns=4, rows=5)
    boxes = character_boxes(page)
    pixels = np.asarray(page).copy()
    ink = ink_mask(page)
    for (left, top, right, bottom), colour in ((boxes[0], (20, 15, 160)), (boxes[-1], (160, 15, 20))):
        region = pixels[top:bottom, left:right]
        region[ink[top:bottom, left:right]] = colour
    drawn = cells(Mosaic(**MOSAIC).draw(Image.fromarray(pixels), boxes, 90), 3)

    def has(cell, colour):
        return bool((np.abs(np.asarray(cell).astype(int) - colour).sum(axis=2) < 60).any())

    assert has(drawn[0], (20, 15, 160)) and has(drawn[-1], (160, 15, 20))
    assert not any(has(c, (20, 15, 160)) or has(c, (160, 15, 20)) for c in drawn[1:-1])


def test_metadata_block_is_optional_and_checked(model_dir):
    assert Mosaic.from_metadata({}) is None
    assert Mosaic.from_metadata({"mosaic": MOSAIC}) == Mosaic(grid=3, min_characters=4)
    bad_blocks = (
        {"grid": 0, "min_characters": 4},
        {"grid": 3, "min_characters": True},
        {"grid": "3", "min_characters": 4},
        {"grid": 3},
        [3, 4],
    )
    for bad in bad_blocks:
        set_metadata(model_dir, mosaic=bad)
        with pytest.raises(ModelError, match="mosaic"):
            read_metadata(model_dir)


def predicted(classifier, img):
    return list(classifier.predict_image(img).probs.values())


def averaged(model_dir, img, view):
    plain = Classifier(model_dir, crops=0)
    return np.mean([predicted(plain, v) for v in (img, view)], axis=0).tolist()


@pytest.mark.parametrize(("columns", "second"), [(3, "mosaic"), (1, "crop")])
def test_the_runtime_reads_pages_of_enough_characters_through_their_mosaic(model_dir, columns, second):
    page, _ = character_page(columns=columns, rows=1 if columns == 1 else 4)
    page.paste(solid((30, 160, 40), (page.width, 8)), (0, 0))  # a green rule: the crop and the mosaic differ
    view = (
        Mosaic(**MOSAIC).draw(page, character_boxes(page), 32)
        if second == "mosaic"
        else page.crop(crop_boxes(*page.size, 1)[0])
    )
    mosaic = Classifier(set_metadata(model_dir, tta={"crops": 1}, mosaic=MOSAIC))
    assert predicted(mosaic, page) == pytest.approx(averaged(model_dir, page, view), abs=1e-6)
    assert mosaic.predict_batch([encode(page), b""])[0] == mosaic.predict(encode(page))
    assert predicted(Classifier(model_dir, crops=0), page) == predicted(
        Classifier(set_metadata(model_dir, tta={"crops": 0}, mosaic=MOSAIC)), page
    ), "no second view at all with crops 0"


def test_the_framing_detectors_call_of_a_few_characters_comes_first(model_dir):
    page, _ = character_page(columns=3, rows=4)
    red = np.asarray(page).copy()
    red[~ink_mask(page)] = (230, 40, 40)
    page = Image.fromarray(red)
    assert len(character_boxes(page)) == 12
    model_dir = with_framing(model_dir, 1.0)
    both = Classifier(set_metadata(model_dir, mosaic=MOSAIC))
    assert predicted(both, page) == pytest.approx(averaged(model_dir, page, tiled(page, 3)), abs=1e-6)
    assert json.loads((model_dir / "model.json").read_text())["mosaic"] == MOSAIC
