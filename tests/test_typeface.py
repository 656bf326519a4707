"""Regular script rendered from typefaces: the training images the fonts check never sees."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.data import Dataset
from trainer.typeface import HELD_OUT, common_characters, missing_characters, with_typeface_characters


def _cjk_font() -> Path:
    """Any installed font with Chinese glyphs (`make browser` installs WenQuanYi Zen Hei where none is)."""
    if shutil.which("fc-list"):
        listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True).stdout
        for line in sorted(listed.splitlines()):
            path = Path(line.rstrip().rstrip(":"))
            if path.is_file() and not missing_characters(path, "楷书"):
                return path
    pytest.skip("no font with Chinese glyphs is installed")


@pytest.fixture
def pages(tmp_path) -> Dataset:
    root = tmp_path / "data"
    items, labels = [], []
    for label in ("kaishu", "lishu"):
        (root / label).mkdir(parents=True)
        path = root / label / f"{label}.png"
        Image.new("RGB", (64, 64), "white").save(path)
        items.append(path)
        labels.append(label)
    return Dataset(root=root, classes=["kaishu", "lishu"], items=items, labels=labels)


def test_training_characters_are_common_and_leave_the_checked_ones_out():
    chars = common_characters()
    assert len(chars) > 3500 and len(set(chars)) == len(chars)
    assert not set(chars) & set(HELD_OUT)
    assert all("\u4e00" <= char <= "\u9fff" for char in chars)


def test_rendered_characters_join_training_as_regular_script(pages, tmp_path):
    font = _cjk_font()
    out = with_typeface_characters(pages, 12, (font,), tmp_path / "rendered", seed=3)

    assert out.items[:2] == pages.items and len(out.items) == 14  # the pages, and so the split's indices, stay
    assert out.labels[2:] == ["kaishu"] * 12 and out.per_class == {"kaishu": 13, "lishu": 1}
    assert all(path.parent == tmp_path / "rendered" / "kaishu" for path in out.items[2:])
    polarities = set()
    for path in out.items[2:]:
        grey = np.asarray(Image.open(path).convert("L"), dtype=float)
        assert grey.shape == (320, 320) and grey.max() - grey.min() > 150  # strokes drawn, not an empty square
        polarities.add(np.median(grey) > 128)
    assert polarities == {True, False}  # ink on paper and rubbings


def test_rendering_is_reproducible_by_seed(pages, tmp_path):
    font = _cjk_font()
    first = with_typeface_characters(pages, 4, (font,), tmp_path / "a", seed=5)
    again = with_typeface_characters(pages, 4, (font,), tmp_path / "b", seed=5)
    other = with_typeface_characters(pages, 4, (font,), tmp_path / "c", seed=6)
    read = [[path.read_bytes() for path in d.items[2:]] for d in (first, again, other)]
    assert read[0] == read[1] and read[0] != read[2]


def test_a_missing_font_or_class_is_a_clear_error(pages, tmp_path):
    with pytest.raises(FileNotFoundError, match="fonts-noto-cjk"):
        with_typeface_characters(pages, 2, (tmp_path / "none.ttc",), tmp_path / "r", seed=0)
    no_kaishu = Dataset(root=pages.root, classes=["lishu"], items=pages.items[1:], labels=["lishu"])
    with pytest.raises(ValueError, match="kaishu"):
        with_typeface_characters(no_kaishu, 2, (_cjk_font(),), tmp_path / "r", seed=0)
