"""Scan a folder-per-class dataset, drop bad files, and split it without leaking near-duplicates.

Many images in scraped calligraphy sets are pages of one book or re-encodings of one picture; a random
split puts them on both sides and flatters the model. Images are grouped by their source series (from
`MANIFEST.csv` where present) and by near-duplicate image hashes, and a group never straddles the split.
A reviewed exclusion list (`exclusions/`) keeps mislabeled or off-style images out of training only.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from calligraphy.errors import UsageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MIN_IMAGES_PER_CLASS = 2
# Correlation of 32×32 grey thumbnails at or above which two images count as one picture or one book:
# re-encoded, resized copies score above 0.97; distinct pages of one gridded copybook stay below 0.9.
THUMBNAIL_SIDE = 32
NEAR_DUPLICATE_SIMILARITY = 0.93
EXCLUSION_COLUMNS = ("file", "label", "reason")


@dataclass
class Dataset:
    """The usable images of a folder-per-class directory, with what was skipped and why."""

    root: Path
    classes: list[str]
    items: list[Path]
    labels: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # kept out of training by an exclusion list

    @property
    def per_class(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts[c] for c in self.classes}

    def relative_files(self) -> list[str]:
        """The items as `class/name` paths under the root: the form model.json lists files in."""
        return [item.relative_to(self.root).as_posix() for item in self.items]

    def fingerprint(self) -> str:
        """Identify the exact data a model saw: relative paths and sizes, in a stable order."""
        digest = hashlib.sha256()
        for path in sorted(self.items):
            digest.update(f"{path.relative_to(self.root).as_posix()}\t{path.stat().st_size}\n".encode())
        return digest.hexdigest()


def _check_image(path: Path) -> str | None:
    """Return why `path` cannot be trained on, or None when it decodes."""
    if path.stat().st_size == 0:
        return "empty file"
    try:
        with Image.open(path) as img:
            img.load()
            if min(img.size) < 8:
                return f"too small ({img.size[0]}x{img.size[1]})"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"unreadable image ({type(exc).__name__})"
    return None


def scan_dataset(root: Path, min_per_class: int = MIN_IMAGES_PER_CLASS) -> Dataset:
    """Collect the images under `root/<class>/`, skipping bad files with one warning each."""
    if not root.is_dir():
        raise UsageError(f"data directory {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items: list[Path] = []
    labels: list[str] = []
    skipped: list[tuple[str, str]] = []
    for cls in classes:
        for path in sorted((root / cls).iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            reason = "not an image file" if path.suffix.lower() not in IMAGE_SUFFIXES else _check_image(path)
            if reason:
                rel = path.relative_to(root).as_posix()
                log.warning("skipping %s: %s", rel, reason)
                skipped.append((rel, reason))
                continue
            items.append(path)
            labels.append(cls)
    dataset = Dataset(root=root, classes=classes, items=items, labels=labels, skipped=skipped)
    _require_enough(dataset, min_per_class)
    return dataset


def _require_enough(dataset: Dataset, min_per_class: int) -> None:
    counts = dataset.per_class
    usable = [c for c, n in counts.items() if n > 0]
    if len(usable) < 2:
        found = ", ".join(f"{c}: {n}" for c, n in counts.items()) or "no class folders"
        raise UsageError(
            f"need at least two class folders with images in {dataset.root} (found {found}); "
            "lay the data out as DIR/<class>/<image>"
        )
    short = {c: n for c, n in counts.items() if n < min_per_class}
    if short:
        listed = ", ".join(f"{c} has {n}" for c, n in short.items())
        raise UsageError(f"too few images per class (need at least {min_per_class}): {listed}")


def thumbnail_vector(path: Path, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """A side×side grey thumbnail, zero-mean and unit-length: dot products are correlations.

    Coarser bit hashes (dHash) call every page of a gridded copybook a duplicate of every other, so
    whole styles collapse into one group; the correlation of small thumbnails tells re-encodings and
    pages of one book apart from pages that merely share a layout.
    """
    with Image.open(path) as img:
        img.draft("L", (2 * side, 2 * side))
        pixels = np.asarray(img.convert("L").resize((side, side), Image.Resampling.BOX), dtype=np.float32)
    flat = pixels.ravel() - pixels.mean()
    return flat / (np.linalg.norm(flat) + 1e-6)


def near_duplicate_pairs(
    vectors: np.ndarray, min_similarity: float = NEAR_DUPLICATE_SIMILARITY, block: int = 1024
) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose thumbnails correlate at least `min_similarity`, in blocks to bound memory."""
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(vectors), block):
        similarity = vectors[start : start + block] @ vectors.T
        rows, cols = np.nonzero(similarity >= min_similarity)
        pairs.extend((start + int(i), int(j)) for i, j in zip(rows, cols, strict=True) if start + i < j)
    return pairs


_TRAILING_NUMBER = re.compile(r"[\s_\-]*\(?\d+\)?$")


def manifest_series(root: Path) -> dict[str, str]:
    """Map relative file paths to a source-series key, from `MANIFEST.csv` where the dataset has one.

    A source path such as `data/kaishu/<book title>_<page>.jpg` names its book; plain numbered files
    (`data/kaishu/271.jpg`) carry no series and get none.
    """
    manifest = root / "MANIFEST.csv"
    if not manifest.is_file():
        return {}
    series: dict[str, str] = {}
    with manifest.open(newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            source = row.get("source_path") or ""
            stem = _TRAILING_NUMBER.sub("", Path(source).stem)
            if row.get("file") and stem:
                series[row["file"]] = f"{Path(source).parent.as_posix()}/{stem}"
    return series


def group_ids(dataset: Dataset) -> list[int]:
    """One group id per item: items of one source series or near-duplicates share a group."""
    parent = list(range(len(dataset.items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    series = manifest_series(dataset.root)
    first_of_series: dict[str, int] = {}
    for i, path in enumerate(dataset.items):
        key = series.get(path.relative_to(dataset.root).as_posix())
        if key is not None:
            union(i, first_of_series.setdefault(key, i))
    for i, j in near_duplicate_pairs(np.stack([thumbnail_vector(p) for p in dataset.items])):
        union(i, j)
    return [find(i) for i in range(len(dataset.items))]


def grouped_split(dataset: Dataset, groups: list[int], valid_pct: float, seed: int) -> list[int]:
    """Validation indices: whole groups, about `valid_pct` of each class's movable images, reproducibly.

    A group too big to hold out (a long book series, more than the class's whole validation budget)
    stays in training; the budget is then taken from the remaining groups only. Otherwise a class made
    of two big series plus scattered pages would lose nearly all its scattered pages to validation, and
    the model would learn those two books instead of the style.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_class: dict[str, list[int]] = defaultdict(list)
    for g, idx in members.items():
        majority = Counter(dataset.labels[i] for i in idx).most_common(1)[0][0]
        by_class[majority].append(g)
    rng = random.Random(seed)
    valid: list[int] = []
    for cls in dataset.classes:
        limit = valid_pct * dataset.per_class[cls]
        movable = sorted(g for g in by_class[cls] if len(members[g]) <= limit)
        rng.shuffle(movable)
        budget = max(1, round(valid_pct * sum(len(members[g]) for g in movable)))
        taken = 0
        for g in movable:
            if taken + len(members[g]) <= budget * 1.25:
                valid.extend(members[g])
                taken += len(members[g])
            if taken >= budget:
                break
    if not valid or len(valid) == len(dataset.items):
        raise UsageError("cannot make a grouped validation split: the data has too few independent groups")
    return sorted(valid)


def read_exclusions(path: Path) -> dict[str, str]:
    """Map files (relative to the data root, `<class>/<name>`) to why they are kept out of training.

    The list is data, reviewed by a person: a CSV with the columns `file,label,reason`.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in EXCLUSION_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(
                    f"exclusion list {path}: missing column(s) {', '.join(missing)}; "
                    f"expected a CSV header {','.join(EXCLUSION_COLUMNS)}"
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read exclusion list {path}: {exc}") from None
    return {row["file"].strip(): (row["reason"] or "").strip() for row in rows if (row["file"] or "").strip()}


def exclude_from_training(
    dataset: Dataset, valid_idx: list[int], exclusions: dict[str, str]
) -> tuple[Dataset, list[int]]:
    """Drop listed files from the training side only, and re-index the validation split to match.

    The split is made on every image first and validation keeps its listed files, so the validation set,
    and with it every accuracy, stays comparable with runs made without the list.
    """
    if not exclusions:
        return dataset, valid_idx
    valid = set(valid_idx)
    keep: list[int] = []
    excluded: list[tuple[str, str]] = []
    in_validation = 0
    for i, path in enumerate(dataset.items):
        rel = path.relative_to(dataset.root).as_posix()
        if rel in exclusions and i not in valid:
            excluded.append((rel, exclusions[rel]))
            continue
        in_validation += rel in exclusions
        keep.append(i)
    log.info(
        "exclusion list: %d of its %d entries found in the data; kept out of training: %d, left in validation: %d",
        len(excluded) + in_validation,
        len(exclusions),
        len(excluded),
        in_validation,
    )
    position = {old: new for new, old in enumerate(keep)}
    trimmed = replace(
        dataset,
        items=[dataset.items[i] for i in keep],
        labels=[dataset.labels[i] for i in keep],
        excluded=excluded,
    )
    return trimmed, [position[i] for i in valid_idx]


def random_split(n: int, valid_pct: float, seed: int) -> list[int]:
    """Validation indices of a plain random split: the leaky baseline the seed reported."""
    rng = random.Random(seed)
    k = max(1, round(valid_pct * n))
    return sorted(rng.sample(range(n), k))
