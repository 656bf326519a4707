"""Regular script rendered from typefaces: the training images the fonts check never sees."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from cli_checks import assert_refused_in_one_line
from datasets import make_dataset, tiny_config
from PIL import Image

from calligraphy.errors import UsageError
from trainer.data import Dataset
from trainer.typeface import (
    HELD_OUT,
    common_characters,
    load_typefaces,
    missing_characters,
    with_typeface_captions,
    with_typeface_characters,
)


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
    out = with_typeface_characters(pages, 12, load_typefaces((font,)), tmp_path / "rendered", seed=3)

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
    typefaces = load_typefaces((_cjk_font(),))
    first = with_typeface_characters(pages, 4, typefaces, tmp_path / "a", seed=5)
    again = with_typeface_characters(pages, 4, typefaces, tmp_path / "b", seed=5)
    other = with_typeface_characters(pages, 4, typefaces, tmp_path / "c", seed=6)
    read = [[path.read_bytes() for path in d.items[2:]] for d in (first, again, other)]
    assert read[0] == read[1] and read[0] != read[2]


def test_captions_go_on_training_pages_of_other_styles_along_an_edge(pages, tmp_path):
    typefaces = load_typefaces((_cjk_font(),))
    out = with_typeface_captions(pages, [], 6, typefaces, tmp_path / "captioned", seed=2)

    assert out.items[:2] == pages.items and out.labels[2:] == ["lishu"] * 6  # kaishu pages are never captioned
    assert all(path.parent == tmp_path / "captioned" / "lishu" for path in out.items[2:])
    for path in out.items[2:]:
        grey = np.asarray(Image.open(path).convert("L"), dtype=float)
        assert grey.shape == (64, 64)  # the page's own size
        assert grey.min() < 100  # printed characters on the white page
        assert grey[16:48, 16:48].min() > 230  # along an edge, off the page's middle
    again = with_typeface_captions(pages, [], 6, typefaces, tmp_path / "again", seed=2)
    assert [p.read_bytes() for p in again.items[2:]] == [p.read_bytes() for p in out.items[2:]]
    with pytest.raises(UsageError, match="other styles than kaishu; this data has none"):
        with_typeface_captions(pages, [1], 2, typefaces, tmp_path / "r", seed=0)  # the lishu page is validation


def test_captions_placed_anywhere_reach_the_middle_in_faint_and_solid_ink(pages, tmp_path):
    typefaces = load_typefaces((_cjk_font(),))
    out = with_typeface_captions(pages, [], 24, typefaces, tmp_path / "captioned", seed=3, placement="anywhere")

    greys = [np.asarray(Image.open(path).convert("L"), dtype=float) for path in out.items[2:]]
    assert out.labels[2:] == ["lishu"] * 24
    assert all(grey.min() < 200 for grey in greys)  # every copy carries its caption
    assert any(grey[16:48, 16:48].min() < 150 for grey in greys)  # some run through the page's middle
    assert any(grey.min() > 100 for grey in greys)  # some are faint, as a watermark
    assert any(grey.min() < 70 for grey in greys)  # some are solid


def test_a_missing_font_or_class_is_a_clear_error(pages, tmp_path):
    with pytest.raises(UsageError, match=r"none\.ttc is missing .*fonts-noto-cjk"):
        load_typefaces((tmp_path / "none.ttc",))
    latin = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if latin.is_file():
        with pytest.raises(UsageError, match="draws only 0 of"):
            load_typefaces((latin,))
    no_kaishu = Dataset(root=pages.root, classes=["lishu"], items=pages.items[1:], labels=["lishu"])
    with pytest.raises(UsageError, match="kaishu, a class this data lacks"):
        with_typeface_characters(no_kaishu, 2, load_typefaces((_cjk_font(),)), tmp_path / "r", seed=0)


@pytest.mark.parametrize("option", ["--typeface-images", "--typeface-captions"])
def test_cli_refuses_typefaces_without_their_font_in_one_line(option, tmp_path, capsys):
    from calligraphy.cli import main

    root = make_dataset(tmp_path / "data", per_class=4, classes=("kaishu", "lishu"))
    out = tmp_path / "out"
    args = [option, "4", "--typeface-font", str(tmp_path / "none.ttc")]
    status = main(["train", "--data", str(root), "--out", str(out), *args])
    assert_refused_in_one_line(status, capsys, "none.ttc is missing", out)


def test_a_run_trains_with_rendered_characters_and_leaves_none_behind(tmp_path, caplog, monkeypatch):
    from trainer.pipeline import run

    font = _cjk_font()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    root = make_dataset(tmp_path / "data", per_class=6, classes=("kaishu", "lishu"))
    config = tiny_config(
        root,
        tmp_path / "out",
        typeface_images=8,
        typeface_captions=4,
        typeface_fonts=(font,),
        framing_images=0,
        random_baseline=True,
    )
    with caplog.at_level(logging.INFO, logger="trainer.typeface"):
        metadata = run(config)
    assert caplog.text.count("8 typeface characters") == 2  # the random-split baseline trains the same recipe
    assert caplog.text.count("4 training pages of other styles than kaishu captioned") == 2
    assert metadata["training"]["typeface_captions"] == 4
    assert 0.0 <= metadata["metrics"]["random_split_accuracy"] <= 1.0
    assert metadata["training"]["typeface_images"] == 8 and metadata["training"]["typeface_fonts"] == [str(font)]
    assert metadata["dataset"]["n_images"] == 12  # the data's own images: rendered ones are not part of it
    assert not list(scratch.glob("typefaces-*"))
