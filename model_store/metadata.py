"""Reading and checking `model.json`, so a broken version directory fails early with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_store.framing import Framing
from model_store.neighbours import NeighbourSettings
from model_store.preprocess import Preprocessing

METADATA_FILE = "model.json"
MODEL_FILE = "model.onnx"


class ModelError(ValueError):
    """A version directory that breaks the contract in docs/model-format.md."""


def validate_metadata(meta: Any) -> dict:
    """Check the keys the runtime relies on; return `meta` unchanged when it passes."""
    if not isinstance(meta, dict):
        raise ModelError("model.json must hold a JSON object")
    classes = meta.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) and c for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise ModelError("model.json: 'classes' must be a non-empty list of distinct names")
    try:
        Preprocessing.from_metadata(meta)
        Framing.from_metadata(meta)
        NeighbourSettings.from_metadata(meta)
    except KeyError as exc:
        raise ModelError(f"model.json: missing {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model.json: {exc}") from exc
    temperature = meta.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ModelError("model.json: 'temperature' must be a number > 0")
    crops = meta.get("tta", {}).get("crops", 0) if isinstance(meta.get("tta", {}), dict) else None
    if isinstance(crops, bool) or not isinstance(crops, int) or crops < 0:
        raise ModelError("model.json: 'tta.crops' must be an integer >= 0")
    class_prior(meta)
    return meta


def class_prior(meta: dict) -> list[float] | None:
    """The training split's class shares in `classes` order, summing to one, which the runtime divides out so that
    no style is favoured for having had more training pages; None when model.json holds none."""
    prior = meta.get("class_prior")
    if prior is None:
        return None
    classes = meta["classes"]
    if (
        not isinstance(prior, dict)
        or set(prior) != set(classes)
        or not all(not isinstance(v, bool) and isinstance(v, int | float) and v > 0 for v in prior.values())
    ):
        raise ModelError("model.json: 'class_prior' must map every class to a share > 0")
    total = sum(prior.values())
    return [prior[c] / total for c in classes]


def read_metadata(model_dir: Path) -> dict:
    """Load and validate `model.json` from a version directory."""
    path = Path(model_dir) / METADATA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{model_dir}: no {METADATA_FILE}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable: {exc}") from exc
    return validate_metadata(meta)


def write_metadata(model_dir: Path, metadata: dict) -> None:
    """Replace `model.json` whole (temporary file, then rename): a reader never sees half of it."""
    tmp = Path(model_dir) / f"{METADATA_FILE}.tmp"
    tmp.write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(Path(model_dir) / METADATA_FILE)
