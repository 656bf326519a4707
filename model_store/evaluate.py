"""Accuracy of a classifier on a folder-per-class directory: confusion matrix, per-class precision/recall."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_store.images import ImageError
from model_store.runtime import BATCH_SIZE, Classifier

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Counts of (true class, predicted class) pairs and what could not be scored."""

    classes: list[str]
    confusion: np.ndarray
    skipped: int = 0
    skipped_folders: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.n) if self.n else 0.0

    def per_class(self) -> dict[str, dict[str, float | int]]:
        """Precision and recall per class; 0.0 where a class was never predicted or never present."""
        predicted, actual = self.confusion.sum(axis=0), self.confusion.sum(axis=1)
        result: dict[str, dict[str, float | int]] = {}
        for i, name in enumerate(self.classes):
            hits = self.confusion[i, i]
            result[name] = {
                "precision": float(hits / predicted[i]) if predicted[i] else 0.0,
                "recall": float(hits / actual[i]) if actual[i] else 0.0,
                "n": int(actual[i]),
            }
        return result

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "n": self.n,
            "skipped": self.skipped,
            "skipped_folders": self.skipped_folders,
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
            "classes": self.classes,
        }

    def table(self) -> str:
        """The figures for a person: per-class rows, accuracy, then the confusion matrix."""
        width = max(len(c) for c in self.classes) + 2
        lines = [f"{'class':<{width}}{'n':>6}{'precision':>11}{'recall':>8}"]
        for name, row in self.per_class().items():
            lines.append(f"{name:<{width}}{row['n']:>6}{row['precision']:>11.3f}{row['recall']:>8.3f}")
        lines.append(f"{'accuracy':<{width}}{self.n:>6}{self.accuracy:>11.3f}")
        if self.skipped:
            lines.append(f"skipped {self.skipped} files")
        if self.skipped_folders:
            lines.append(f"folders that are not classes of the model: {', '.join(self.skipped_folders)}")
        lines.append("confusion (rows: true class, columns: predicted)")
        lines.append(" " * width + "".join(f"{c[: width - 1]:>{width}}" for c in self.classes))
        for name, row in zip(self.classes, self.confusion, strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in row))
        return "\n".join(lines)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def evaluate(classifier: Classifier, data_dir: Path) -> Evaluation:
    """Classify every file under `data_dir/<class>/`; other folders and unreadable images are skipped."""
    classes = classifier.classes
    result = Evaluation(classes=list(classes), confusion=np.zeros((len(classes), len(classes)), dtype=int))
    labelled: list[tuple[Path, int]] = []
    for folder in sorted(p for p in Path(data_dir).iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in classes:
            labelled += [(f, classes.index(folder.name)) for f in _files(folder)]
        else:
            result.skipped_folders.append(folder.name)
            result.skipped += len(_files(folder))
    for start in range(0, len(labelled), BATCH_SIZE):
        chunk = labelled[start : start + BATCH_SIZE]
        outcomes = classifier.predict_batch([path.read_bytes() for path, _ in chunk])
        for (path, truth), outcome in zip(chunk, outcomes, strict=True):
            if isinstance(outcome, ImageError):
                log.warning("skipped %s: %s", path, outcome)
                result.skipped += 1
            else:
                result.confusion[truth, classes.index(outcome.label)] += 1
    return result
