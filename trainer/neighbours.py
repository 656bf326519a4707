"""The memory beside the head (`model_store.neighbours`): the run's own training images, read with the runtime's
views, as the features its pictures' neighbours are found among.

Built after the framing detector (which chooses the views) and before the temperature (which is fitted to the
blend). Nothing is trained: the bank is the features of the images the model trained on, so the bot's retraining
gets a memory of the feedback it was given too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from calligraphy.errors import UsageError
from model_store.images import ImageError, decode_image, to_rgb
from model_store.metadata import MODEL_FILE, read_metadata, write_metadata
from model_store.neighbours import NEIGHBOURS_FILE, unit_rows
from model_store.runtime import BATCH_SIZE, Classifier
from trainer.data import scan_dataset
from trainer.framing import expose_features

log = logging.getLogger(__name__)

# Chosen on run 31 alone, then judged on runs 44-48 (docs/experiments.md, session 16).
K = 10
TAU = 0.1
WEIGHT = 0.5


def trained_files(model_dir: Path, data_root: Path) -> list[str]:
    """The files the run trained on: the scanned ones less its validation split and its exclusion list."""
    dataset = read_metadata(model_dir).get("dataset", {})
    left_out = set(dataset.get("valid_files", [])) | {e["file"] for e in dataset.get("excluded_files", [])}
    return [f for f in scan_dataset(data_root).relative_files() if f not in left_out]


def remove_neighbours(model_dir: Path) -> None:
    """Take the memory out of a run directory: model.json's block and its file."""
    metadata = read_metadata(model_dir)
    if metadata.pop("neighbours", None) is not None:
        write_metadata(model_dir, metadata)
    (Path(model_dir) / NEIGHBOURS_FILE).unlink(missing_ok=True)


def build_neighbours(model_dir: Path, data_root: Path, k: int = K, tau: float = TAU, weight: float = WEIGHT) -> dict:
    """Read the run's training images with its views, write their mean view features to `neighbours.npz` and
    model.json's `neighbours` block; return the block."""
    model_dir, data_root = Path(model_dir), Path(data_root)
    remove_neighbours(model_dir)  # the features are read with the memory-less runtime
    expose_features(model_dir / MODEL_FILE)
    classifier = Classifier(model_dir, raw=True)
    files = trained_files(model_dir, data_root)
    if not files:
        raise UsageError(f"{data_root} has none of the images {model_dir} trained on")
    rows, labels = [], []
    for start in range(0, len(files), BATCH_SIZE):
        batch, names = [], []
        for file in files[start : start + BATCH_SIZE]:
            try:
                batch.append(to_rgb(decode_image((data_root / file).read_bytes(), max_side=classifier.decode_side)))
            except (ImageError, OSError) as exc:
                log.warning("not in the memory: %s (%s)", file, exc)
                continue
            names.append(file)
        if not batch:
            continue
        for file, outputs in zip(names, classifier.view_outputs(batch, features=True), strict=True):
            rows.append(outputs.features.mean(axis=0))
            labels.append(classifier.classes.index(file.split("/")[0]))
    np.savez(
        model_dir / NEIGHBOURS_FILE,
        features=unit_rows(np.array(rows)).astype(np.float16),
        labels=np.array(labels, dtype=np.int16),
    )
    block = {"k": k, "tau": tau, "weight": weight, "pictures": len(rows)}
    metadata = read_metadata(model_dir)
    metadata["neighbours"] = block
    write_metadata(model_dir, metadata)
    log.info("memory of %d training images (k=%d, tau=%g, weight %g)", len(rows), k, tau, weight)
    return block
