"""The fixed evaluation set that gates a candidate: both models are judged on it and neither trained on it.

CALLIGRAPHY_EVAL_DATA names one (a folder per class). Without it, the served model's own grouped validation
split is used: the files its `model.json` lists under `dataset.valid_files`, found in the base dataset or,
for a model retrained here, among the bot's kept images (the export names them after the image).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot.config import Settings
from bot.image_store import ImageStore
from bot.training_set import class_files, class_folders, link_or_copy
from model_store.metadata import read_metadata
from model_store.store import DEFAULT_VERSION, ModelStore, sha256_of

log = logging.getLogger(__name__)


class EvalSetError(Exception):
    """No usable evaluation set; the message says what to configure."""


@dataclass(frozen=True)
class EvalSet:
    root: Path
    digests: frozenset[str]
    n: int
    source: str


def fixed_eval_set(settings: Settings, store: ModelStore, images: ImageStore, out: Path) -> EvalSet:
    """CALLIGRAPHY_EVAL_DATA where set, else the served model's validation split linked into `out`."""
    if settings.eval_data is not None:
        return configured_eval_set(settings.eval_data)
    version = store.current() or DEFAULT_VERSION
    return validation_split_set(read_metadata(store.current_path()), version, settings.base_data, images, out)


def configured_eval_set(eval_data: Path) -> EvalSet:
    """The folder-per-class directory CALLIGRAPHY_EVAL_DATA names, as it is."""
    files = [path for cls in class_folders(eval_data) for path in class_files(eval_data, cls)]
    if not files:
        raise EvalSetError(f"CALLIGRAPHY_EVAL_DATA {eval_data} holds no images in class folders")
    return EvalSet(eval_data, frozenset(sha256_of(p) for p in files), len(files), "CALLIGRAPHY_EVAL_DATA")


def validation_split_set(metadata: dict, version: str, base: Path, images: ImageStore, out: Path) -> EvalSet:
    """Link the served model's validation files into `out/<class>/`, from the base data or the kept images."""
    valid_files = metadata.get("dataset", {}).get("valid_files")
    if not valid_files:
        raise EvalSetError(
            f"no evaluation set: model {version} lists no validation files; set CALLIGRAPHY_EVAL_DATA "
            "to a folder per class, or serve a model trained by `calligraphy train`"
        )
    digests, linked, missing = set(), 0, 0
    for relative in valid_files:
        parts = PurePosixPath(relative).parts
        source = _find(parts, base, images)
        if source is None:
            missing += 1
            continue
        link_or_copy(source, out / parts[0] / parts[1])
        digests.add(sha256_of(source))
        linked += 1
    if not linked:
        raise EvalSetError(
            f"none of the {len(valid_files)} validation files of model {version} is in {base} or among the kept "
            "images; set CALLIGRAPHY_EVAL_DATA to a folder per class"
        )
    if missing:
        log.warning("%d of the validation files of %s were not found and are not evaluated", missing, version)
    source_text = f"validation split of {version}" + (f", {missing} files missing" if missing else "")
    return EvalSet(out, frozenset(digests), linked, source_text)


def _find(parts: tuple[str, ...], base: Path, images: ImageStore) -> Path | None:
    """`base/<class>/<file>`, else the kept image of that name; None for a path that leaves either folder."""
    if len(parts) != 2 or any(part.startswith(".") for part in parts):
        return None
    in_base = base.joinpath(*parts)
    if in_base.is_file():
        return in_base
    kept = images.path(parts[1])
    return kept if kept.is_file() else None
