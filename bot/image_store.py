"""Images kept for relabeling and retraining, named by their SHA-256 so the same image is stored once."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from model_store.store import atomic_write

_EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, data: bytes) -> str:
        """Write `data` unless an identical image is there already; returns its file name."""
        name = hashlib.sha256(data).hexdigest() + _extension(data)
        target = self.root / name
        if target.exists():
            return name
        self.root.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written image under its final name.
        atomic_write(target, data)
        return name

    def path(self, name: str) -> Path:
        if Path(name).name != name or name.startswith("."):
            raise ValueError(f"not an image name: {name!r}")
        return self.root / name


def _extension(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _EXTENSIONS.get(img.format or "", ".img")
    except (UnidentifiedImageError, OSError, ValueError):
        return ".img"
