"""Shared fixtures: a tiny real ONNX model directory and an empty model store."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_factory import make_model_dir

from model_store.store import ModelStore


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A trainer-style output directory with the channel-mean test model (red→kaishu, green→lishu, blue→xiaozhuan)."""
    return make_model_dir(tmp_path / "trained")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    """An empty store in a temporary directory."""
    return ModelStore(tmp_path / "store")
