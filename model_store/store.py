"""A directory of immutable model versions and an atomically replaced `current` pointer.

Layout of the store root::

    v0001/ v0002/ ...   each a trainer version directory plus `sha256` (of model.onnx), files read-only
    current             the name of the version being served (absent: serve the packaged default)
    history             the promoted versions, oldest first; its last line is `current`

Both files are replaced whole (temporary file, fsync, rename), so a reader or a killed writer never sees
half a name. `history` is written before `current`; if a writer dies between the two, the pointer wins
and the history is mended on the next read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from model_store.metadata import MODEL_FILE, ModelError, read_metadata

log = logging.getLogger(__name__)

CHECKSUM_FILE = "sha256"
CURRENT_FILE = "current"
HISTORY_FILE = "history"
VERSION_PATTERN = re.compile(r"v\d{4,}")
# Pickles (the fastai learner, torch checkpoints) never enter the serving side.
SKIPPED_SUFFIXES = (".pkl", ".pth", ".pt")
DEFAULT_VERSION = "default"


class StoreError(Exception):
    """A store operation that cannot be done; the message says why, for the person at the terminal."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    path: Path
    created_at: str
    accuracy: float | None
    is_current: bool


def default_model_path() -> Path:
    """The model shipped inside the package, served while no version has been promoted."""
    return Path(__file__).resolve().parent / "default_model"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, content: str | bytes) -> None:
    """Replace `path` with `content` so that readers see the old or the new content, nothing between."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class ModelStore:
    """Versions on disk: add, list, promote, roll back."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_env(cls) -> ModelStore:
        """`$CALLIGRAPHY_HOME/models`, with CALLIGRAPHY_HOME defaulting to ./var."""
        return cls(Path(os.environ.get("CALLIGRAPHY_HOME") or "var") / "models")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers across processes (the bot's retraining job and the CLI)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and VERSION_PATTERN.fullmatch(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def path(self, version: str) -> Path:
        """Directory of a stored version."""
        if not VERSION_PATTERN.fullmatch(version):
            raise StoreError(f"{version!r} is not a version name (like v0001)")
        path = self.root / version
        if not path.is_dir():
            known = ", ".join(self._names()) or "none"
            raise StoreError(f"no version {version} in {self.root} (versions: {known})")
        return path

    def verify(self, version: str) -> Path:
        """Check a version's checksum and metadata; return its directory."""
        path = self.path(version)
        model = path / MODEL_FILE
        try:
            expected = (path / CHECKSUM_FILE).read_text().strip()
            actual = sha256_of(model)
        except OSError as exc:
            raise StoreError(f"version {version} is incomplete: {exc}") from exc
        if actual != expected:
            raise StoreError(f"version {version}: checksum mismatch, {MODEL_FILE} was altered or damaged")
        try:
            read_metadata(path)
        except ModelError as exc:
            raise StoreError(f"version {version}: {exc}") from exc
        return path

    def add(self, src_dir: Path) -> str:
        """Copy a trainer output directory in as the next version; return its name."""
        src = Path(src_dir)
        if not (src / MODEL_FILE).is_file():
            raise StoreError(f"{src} is not a model directory: no {MODEL_FILE}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".add-"))
        try:
            self._stage(src, staging)
            with self._locked():
                name = self._next_name()
                staging.rename(self.root / name)
                _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("added %s from %s", name, src)
        return name

    def _stage(self, src: Path, staging: Path) -> None:
        """Load-test the source, then copy and checksum it into a hidden directory no reader looks at."""
        from model_store.runtime import Classifier  # onnxruntime only for `add`, not for `models list`

        try:
            Classifier(src)
        except ModelError as exc:
            raise StoreError(f"refused: {exc}") from exc
        digest = sha256_of(src / MODEL_FILE)
        source_checksum = src / CHECKSUM_FILE
        if source_checksum.is_file() and source_checksum.read_text().strip() != digest:
            raise StoreError(f"refused: {src / MODEL_FILE} does not match its {CHECKSUM_FILE} file")
        for item in sorted(src.iterdir()):
            if not item.is_file() or item.name.startswith(".") or item.name == CHECKSUM_FILE:
                continue
            if item.suffix in SKIPPED_SUFFIXES:
                log.info("not copied into the store: %s", item.name)
                continue
            shutil.copyfile(item, staging / item.name)
        if sha256_of(staging / MODEL_FILE) != digest:
            raise StoreError(f"refused: {src / MODEL_FILE} changed while it was being copied")
        (staging / CHECKSUM_FILE).write_text(digest + "\n")
        for item in staging.iterdir():
            with item.open("rb") as f:
                os.fsync(f.fileno())
            item.chmod(0o444)

    def _next_name(self) -> str:
        names = self._names()
        return f"v{int(names[-1][1:]) + 1 if names else 1:04d}"

    def list(self) -> list[VersionInfo]:
        """All stored versions, oldest first."""
        current = self.current()
        infos = []
        for name in self._names():
            path = self.root / name
            try:
                meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            accuracy = meta.get("metrics", {}).get("accuracy") if isinstance(meta, dict) else None
            created = meta.get("created_at", "") if isinstance(meta, dict) else ""
            infos.append(
                VersionInfo(
                    name=name,
                    path=path,
                    created_at=str(created),
                    accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
                    is_current=name == current,
                )
            )
        return infos

    def current(self) -> str | None:
        """Name of the version being served, None while none has been promoted."""
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path:
        """Directory of the current version, else of the packaged default model."""
        name = self.current()
        if name is not None:
            return self.path(name)
        default = default_model_path()
        if not (default / MODEL_FILE).is_file():
            raise StoreError(
                f"no model to serve: nothing promoted in {self.root} and no packaged default model; "
                "add one with `calligraphy models add DIR` and `calligraphy models promote VERSION`"
            )
        return default

    def history(self) -> list[str]:
        """Promoted versions, oldest first, ending with the current one."""
        current = self.current()
        try:
            lines = (self.root / HISTORY_FILE).read_text(encoding="utf-8").split()
        except FileNotFoundError:
            lines = []
        if current is None:
            return []
        if current not in lines:
            return [*lines, current]
        last = len(lines) - 1 - lines[::-1].index(current)
        return lines[: last + 1]

    def _point_to(self, history: list[str]) -> None:
        atomic_write(self.root / HISTORY_FILE, "".join(f"{n}\n" for n in history))
        atomic_write(self.root / CURRENT_FILE, f"{history[-1]}\n")

    def promote(self, version: str) -> None:
        """Make a verified version the current one."""
        with self._locked():
            self.verify(version)
            history = self.history()
            if history and history[-1] == version:
                return
            self._point_to([*history, version])
        log.info("promoted %s", version)

    def rollback(self) -> str:
        """Go back to the version promoted before the current one; return its name."""
        with self._locked():
            history = self.history()
            if len(history) < 2:
                raise StoreError("nothing to roll back to: fewer than two versions have been promoted")
            target = history[-2]
            self.verify(target)
            self._point_to(history[:-1])
        log.info("rolled back from %s to %s", history[-1], target)
        return target
