"""The trainer's data layer: bad files, clear errors, and a split that never leaks near-duplicates."""

from __future__ import annotations

import argparse
import logging
import random

import numpy as np
import pytest
from datasets import make_dataset, scribble_image
from PIL import Image

from calligraphy.errors import UsageError
from trainer import cli
from trainer.config import DEFAULT_EXCLUSIONS
from trainer.data import (
    exclude_from_training,
    group_ids,
    grouped_split,
    manifest_series,
    near_duplicate_pairs,
    random_split,
    read_exclusions,
    scan_dataset,
    thumbnail_vector,
)


def test_bad_files_are_skipped_and_counted(tmp_path, caplog):
    root = make_dataset(tmp_path / "data", per_class=3)
    (root / "dots" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (root / "vertical" / "empty.png").write_bytes(b"")
    (root / "horizontal" / "readme.txt").write_text("not a picture")
    with caplog.at_level("WARNING"):
        dataset = scan_dataset(root)
    assert len(dataset.items) == 9
    assert sorted(f for f, _ in dataset.skipped) == ["dots/broken.jpg", "horizontal/readme.txt", "vertical/empty.png"]
    assert sum("skipping" in r.message for r in caplog.records) == 3


def test_one_class_is_a_clear_error(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=3, classes=("dots",))
    with pytest.raises(UsageError, match="at least two class folders"):
        scan_dataset(root)


def test_empty_class_folder_counts_as_missing(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=3, classes=("dots",))
    (root / "vertical").mkdir()
    with pytest.raises(UsageError, match="vertical: 0"):
        scan_dataset(root)


def test_too_few_images_in_a_class(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=3, classes=("dots", "vertical"))
    for extra in list((root / "vertical").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(UsageError, match="vertical has 1"):
        scan_dataset(root, min_per_class=2)


def test_missing_directory(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        scan_dataset(tmp_path / "nope")


def test_thumbnails_match_reencoded_copies_only(tmp_path):
    img = scribble_image(random.Random(1), width=300, height=260)
    img.save(tmp_path / "a.png")
    img.resize((150, 130)).save(tmp_path / "b.jpg", quality=60)
    other = scribble_image(random.Random(2), width=300, height=260)
    other.save(tmp_path / "c.png")
    vectors = np.stack([thumbnail_vector(tmp_path / n) for n in ("a.png", "b.jpg", "c.png")])
    assert near_duplicate_pairs(vectors) == [(0, 1)]
    assert near_duplicate_pairs(vectors, block=1) == [(0, 1)]


def test_grouped_split_keeps_near_duplicates_together(tmp_path):
    root = tmp_path / "data"
    rng = random.Random(5)
    for cls in ("kaishu", "lishu", "xiaozhuan"):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            scribble_image(rng).save(root / cls / f"{cls}_{i:02d}.png")
    # Every third page gets re-encoded, resized copies: each copy must land on its original's side.
    copies = {}
    for cls_dir in sorted(root.iterdir()):
        for original in sorted(cls_dir.iterdir())[::3]:
            with Image.open(original) as img:
                for k in range(2):
                    scale = rng.uniform(0.6, 1.4)
                    copy = cls_dir / f"{original.stem}_copy{k}.jpg"
                    img.resize((int(img.width * scale), int(img.height * scale))).save(copy, quality=70)
                    copies[copy] = original
    dataset = scan_dataset(root)
    groups = group_ids(dataset)
    index = {p: i for i, p in enumerate(dataset.items)}
    for seed in range(5):
        valid = set(grouped_split(dataset, groups, valid_pct=0.25, seed=seed))
        assert valid and len(valid) < len(dataset.items)
        for copy, original in copies.items():
            assert (index[copy] in valid) == (index[original] in valid), (copy.name, seed)


def test_manifest_series_group_pages_of_one_book(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=8, classes=("dots", "vertical"))
    rows = ["file,label,source_path,orig_width,orig_height"]
    for cls in ("dots", "vertical"):
        for i, path in enumerate(sorted((root / cls).iterdir())):
            source = f"data/{cls}/Some Stele_rubbing_{i + 1}.jpg" if i < 4 else f"data/{cls}/{i}.jpg"
            rows.append(f"{cls}/{path.name},{cls},{source},72,64")
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    series = manifest_series(root)
    assert series["dots/dots_000.png"] == series["dots/dots_003.png"] == "data/dots/Some Stele_rubbing"
    assert "dots/dots_005.png" not in series
    dataset = scan_dataset(root)
    groups = group_ids(dataset)
    book = {groups[i] for i, p in enumerate(dataset.items) if p.parent.name == "dots" and p.stem < "dots_004"}
    assert len(book) == 1


def test_random_split_is_reproducible():
    assert random_split(100, 0.2, seed=3) == random_split(100, 0.2, seed=3)
    assert len(random_split(100, 0.2, seed=3)) == 20


def test_a_long_series_stays_in_training_and_scattered_pages_are_shared(tmp_path):
    root = tmp_path / "data"
    rng = random.Random(11)
    rows = ["file,label,source_path,orig_width,orig_height"]
    for cls, n in (("lishu", 30), ("kaishu", 15)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            name = f"{cls}_{i:02d}.png"
            scribble_image(rng).save(root / cls / name)
            source = f"data/{cls}/Long Book_{i}.jpg" if cls == "lishu" and i < 20 else f"data/{cls}/{i}.jpg"
            rows.append(f"{cls}/{name},{cls},{source},160,200")
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    dataset = scan_dataset(root)
    valid = grouped_split(dataset, group_ids(dataset), valid_pct=0.2, seed=0)
    names = [dataset.items[i].name for i in valid]
    assert not any(n.startswith("lishu_") and int(n[6:8]) < 20 for n in names)
    assert sum(n.startswith("lishu_") for n in names) == 2  # 20% of the 10 scattered lishu pages
    assert sum(n.startswith("kaishu_") for n in names) == 3


def test_excluded_files_leave_training_and_validation_is_unchanged(tmp_path, caplog):
    root = make_dataset(tmp_path / "data", per_class=10)
    dataset = scan_dataset(root)
    valid_idx = grouped_split(dataset, group_ids(dataset), valid_pct=0.25, seed=0)
    rel = [p.relative_to(root).as_posix() for p in dataset.items]
    valid_files = [rel[i] for i in valid_idx]
    training_files = [f for f in rel if f not in valid_files]
    listed = [training_files[0], training_files[-1], valid_files[0], "dots/not_there.png"]
    (tmp_path / "exclude.csv").write_text(
        "file,label,reason\n" + "".join(f"{f},{f.split('/')[0]},looks wrong\n" for f in listed)
    )
    with caplog.at_level(logging.INFO, logger="trainer.data"):
        trimmed, trimmed_valid = exclude_from_training(dataset, valid_idx, read_exclusions(tmp_path / "exclude.csv"))
    trimmed_rel = [p.relative_to(root).as_posix() for p in trimmed.items]
    assert trimmed.excluded == [(training_files[0], "looks wrong"), (training_files[-1], "looks wrong")]
    assert training_files[0] not in trimmed_rel and training_files[-1] not in trimmed_rel
    assert [trimmed_rel[i] for i in trimmed_valid] == valid_files
    assert [trimmed.labels[i] for i in trimmed_valid] == [dataset.labels[i] for i in valid_idx]
    assert len(trimmed.items) == len(dataset.items) - 2
    assert "3 of its 4 entries found" in caplog.text and "kept out of training: 2, left in validation: 1" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,reason\ndots/a.png,bad\n", "missing column\\(s\\) label;"),
        ("", "missing column\\(s\\) file, label, reason;"),
        ("path;why\ndots/a.png;bad\n", "expected a CSV header file,label,reason"),
    ],
)
def test_a_malformed_exclusion_list_is_a_usage_error(tmp_path, text, message):
    (tmp_path / "exclude.csv").write_text(text)
    with pytest.raises(UsageError, match=message):
        read_exclusions(tmp_path / "exclude.csv")


def test_a_missing_exclusion_list_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read exclusion list"):
        read_exclusions(tmp_path / "nope.csv")


def test_the_packaged_exclusion_lists_are_well_formed_and_disjoint():
    lists = [read_exclusions(path) for path in sorted(DEFAULT_EXCLUSIONS.parent.glob("*.csv"))]
    assert len(lists) == 2
    for exclusions in lists:
        assert exclusions and all(reason for reason in exclusions.values())
        assert all(f.split("/")[0] in ("kaishu", "lishu", "xiaozhuan") for f in exclusions)
    assert not set(lists[0]) & set(lists[1])


def test_the_packaged_exclusion_list_is_the_default():
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers())
    required = ["train", "--data", "d", "--out", "o"]
    assert parser.parse_args(required).exclude == DEFAULT_EXCLUSIONS
    assert parser.parse_args([*required, "--no-exclude"]).exclude is None
    assert str(parser.parse_args([*required, "--exclude", "mine.csv"]).exclude) == "mine.csv"


def test_tta_crops_default_to_the_recipe_and_stay_in_range(capsys):
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers())
    required = ["train", "--data", "d", "--out", "o"]
    assert parser.parse_args(required).tta_crops == 1
    assert parser.parse_args([*required, "--tta-crops", "0"]).tta_crops == 0
    with pytest.raises(SystemExit):
        parser.parse_args([*required, "--tta-crops", "9"])
    assert "--tta-crops" in capsys.readouterr().err
