"""A memory of the model's own training images beside its head: their features vote for the style they show.

The head is one linear layer fitted to augmented batches; the training pages themselves, read with the runtime's
views, hold more than it kept (a series of clerical rubbings, a kind of copybook). The version directory carries
their features (`neighbours.npz`, written by `trainer.neighbours`); a picture's k most cosine-similar training
images vote for their classes, and the votes are blended with the views' mean probabilities before the
temperature (docs/experiments.md, session 16).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NEIGHBOURS_FILE = "neighbours.npz"


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to length one (zero rows stay zero), so a dot product is the cosine similarity."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class NeighbourSettings:
    """model.json's `neighbours` block: how many neighbours vote, how sharply, and how much their vote weighs."""

    k: int
    tau: float
    weight: float

    @classmethod
    def from_metadata(cls, meta: dict) -> NeighbourSettings | None:
        """The block, or None for a model without a memory; ValueError when it is malformed."""
        block = meta.get("neighbours")
        if block is None:
            return None
        if not isinstance(block, dict):
            raise ValueError("'neighbours' must be an object")
        k, tau, weight = block.get("k"), block.get("tau"), block.get("weight")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError("'neighbours.k' must be an integer >= 1")
        if isinstance(tau, bool) or not isinstance(tau, int | float) or not tau > 0:
            raise ValueError("'neighbours.tau' must be a number > 0")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise ValueError("'neighbours.weight' must be a number from 0 to 1")
        return cls(k=k, tau=float(tau), weight=float(weight))


@dataclass(frozen=True)
class Neighbours:
    """The training images' unit features [N, F] and class indices [N], with the settings that read them."""

    features: np.ndarray
    labels: np.ndarray
    n_classes: int
    settings: NeighbourSettings

    @classmethod
    def load(cls, model_dir: Path, settings: NeighbourSettings, n_classes: int, width: int) -> Neighbours:
        """Read `neighbours.npz`; ValueError when it is missing, unreadable or does not fit the model."""
        path = Path(model_dir) / NEIGHBOURS_FILE
        try:
            with np.load(path, allow_pickle=False) as npz:
                features, labels = npz["features"], npz["labels"]
        except FileNotFoundError:
            raise ValueError(f"model.json has a 'neighbours' block but there is no {NEIGHBOURS_FILE}") from None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{NEIGHBOURS_FILE} is unreadable: {exc}") from None
        if features.ndim != 2 or features.shape[1] != width or not len(features):
            raise ValueError(f"{NEIGHBOURS_FILE}: features must be [N, {width}], got {list(features.shape)}")
        if labels.shape != (len(features),) or labels.dtype.kind not in "iu":
            raise ValueError(f"{NEIGHBOURS_FILE}: labels must be N class indices")
        if labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"{NEIGHBOURS_FILE}: labels must be class indices below {n_classes}")
        features = unit_rows(features)
        if not np.isfinite(features).all():
            raise ValueError(f"{NEIGHBOURS_FILE}: features must be finite")
        return cls(features=features, labels=labels.astype(np.int64), n_classes=n_classes, settings=settings)

    def votes(self, features: np.ndarray) -> np.ndarray:
        """[B, F] picture features -> [B, C] class votes summing to one: the k nearest training images, each
        weighted exp((similarity - 1) / tau)."""
        similarity = unit_rows(features) @ self.features.T
        k = min(self.settings.k, len(self.features))
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.exp((np.take_along_axis(similarity, nearest, axis=1).astype(np.float64) - 1) / self.settings.tau)
        votes = np.zeros((len(features), self.n_classes))
        np.add.at(votes, (np.arange(len(features))[:, None], self.labels[nearest]), weights)
        return votes / votes.sum(axis=1, keepdims=True)

    def blend(self, probs: np.ndarray, features: np.ndarray) -> np.ndarray:
        """(1 - weight) · probs + weight · votes, row-wise, for [B, C] probabilities and their [B, F] features."""
        weight = self.settings.weight
        return (1 - weight) * np.asarray(probs, dtype=np.float64) + weight * self.votes(features)
