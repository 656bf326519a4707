"""The data a retraining run learns from: the base dataset plus the images people labelled, one folder per class.

Which label an image gets: the latest admin label wins over anything users said; otherwise the users'
label, when every user who labelled that image agrees (a disagreement leaves the image out). Images are
told apart by content (SHA-256), so a photo sent twice, or a base image sent back to the bot, is trained
on once, and never when it is one of the evaluation images the candidate will be judged on.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.db import ADMIN, Label
from bot.image_store import ImageStore
from model_store.store import sha256_of

log = logging.getLogger(__name__)


@dataclass
class ExportSummary:
    """How many images came from where, and how many were left out and why."""

    per_class: dict[str, int] = field(default_factory=dict)
    base: int = 0
    admin: int = 0
    user: int = 0
    duplicates: int = 0
    conflicts: int = 0
    held_out: int = 0
    unusable: int = 0

    @property
    def total(self) -> int:
        return sum(self.per_class.values())

    def line(self) -> str:
        parts = [f"{self.total} images: {self.base} base, {self.admin} labelled by admins, {self.user} by users"]
        left_out = {
            "duplicates": self.duplicates,
            "with conflicting user labels": self.conflicts,
            "evaluation images held out": self.held_out,
            "missing or of an unknown class": self.unusable,
        }
        parts += [f"{n} {what}" for what, n in left_out.items() if n]
        return "; ".join(parts)


def agreed_labels(labels: Iterable[Label]) -> tuple[dict[str, str], dict[str, str], int]:
    """(image → admin label, image → agreed user label, images whose users disagree), from labels oldest first."""
    admin: dict[str, str] = {}
    users: dict[str, set[str]] = defaultdict(set)
    for label in labels:
        if label.source == ADMIN:
            admin[label.image] = label.label
        else:
            users[label.image].add(label.label)
    agreed = {image: next(iter(given)) for image, given in users.items() if len(given) == 1 and image not in admin}
    conflicts = sum(1 for image, given in users.items() if len(given) > 1 and image not in admin)
    return admin, agreed, conflicts


def class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_files(root: Path, cls: str) -> list[Path]:
    return sorted(p for p in (root / cls).iterdir() if p.is_file() and not p.name.startswith("."))


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link costs no space; across file systems (or where links are refused) copy instead."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def export_training_set(
    base: Path, labels: Iterable[Label], images: ImageStore, out: Path, held_out: set[str]
) -> ExportSummary:
    """Write `out/<class>/<file>`: base files under their own relative path, stored images under their name.

    `held_out` holds the SHA-256 digests of the evaluation images. `out` must not exist yet.
    """
    classes = class_folders(base)
    admin, agreed, conflicts = agreed_labels(labels)
    summary = ExportSummary(per_class=dict.fromkeys(classes, 0), conflicts=conflicts)
    out.mkdir(parents=True)
    taken: set[str] = set()

    def add(src: Path, cls: str, relative: str, digest: str) -> bool:
        if digest in held_out:
            summary.held_out += 1
        elif digest in taken:
            summary.duplicates += 1
        else:
            taken.add(digest)
            link_or_copy(src, out / cls / relative)
            summary.per_class[cls] += 1
            return True
        return False

    def add_stored(chosen: dict[str, str]) -> int:
        added = 0
        for name, cls in chosen.items():
            path = images.path(name)
            if cls not in summary.per_class or not path.is_file():
                log.warning("not exported: kept image %s labelled %r (missing, or no class of %s)", name, cls, base)
                summary.unusable += 1
                continue
            added += add(path, cls, name, name.split(".")[0])
        return added

    # Admins first, so their label decides an image that is also in the base data or labelled by users.
    summary.admin = add_stored(admin)
    for cls in classes:
        for path in class_files(base, cls):
            summary.base += add(path, cls, path.name, sha256_of(path))
    summary.user = add_stored(agreed)
    log.info("training set in %s: %s", out, summary.line())
    return summary
