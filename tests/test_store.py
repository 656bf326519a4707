"""The model store: versions copied in and verified, the atomic `current` pointer, promote and rollback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from model_factory import make_model_dir

from model_store import store as store_module
from model_store.store import ModelStore, StoreError, atomic_write, sha256_of

ROOT = Path(__file__).resolve().parents[1]


def stored(store: ModelStore, model_dir: Path, n: int) -> list[str]:
    return [store.add(model_dir) for _ in range(n)]


def test_add_copies_a_verified_version_without_pickles(store, model_dir):
    (model_dir / "learner.pkl").write_bytes(b"a fastai export")
    (model_dir / "confusion.png").write_bytes(b"a plot")
    name = store.add(model_dir)
    version = store.path(name)
    assert name == "v0001"
    assert sorted(p.name for p in version.iterdir()) == ["confusion.png", "model.json", "model.onnx", "sha256"]
    assert (version / "sha256").read_text().strip() == sha256_of(model_dir / "model.onnx")
    assert (version / "model.onnx").stat().st_mode & 0o222 == 0
    assert store.add(model_dir) == "v0002"


def test_list_reports_metadata_and_current(store, tmp_path):
    store.add(make_model_dir(tmp_path / "a", accuracy=0.7))
    store.add(make_model_dir(tmp_path / "b", accuracy=0.9))
    store.promote("v0002")
    infos = store.list()
    assert [(i.name, i.accuracy, i.is_current) for i in infos] == [("v0001", 0.7, False), ("v0002", 0.9, True)]
    assert infos[1].path == store.root / "v0002" and infos[1].created_at.startswith("2026-")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: (d / "model.onnx").unlink(), "no model.onnx"),
        (lambda d: (d / "model.json").write_text("{not json"), "unreadable"),
        (lambda d: _edit_json(d, classes=[]), "classes"),
        (lambda d: _edit_json(d, resize_method="stretch"), "resize_method"),
        (lambda d: _edit_json(d, input_size=64), "input shape"),
        (lambda d: _edit_json(d, classes=["a", "b"]), "output shape"),
        (lambda d: (d / "model.onnx").write_bytes(b"not a model"), "cannot be loaded"),
        (lambda d: (d / "sha256").write_text("0" * 64), "does not match"),
    ],
    ids=["no-onnx", "bad-json", "no-classes", "bad-resize", "wrong-size", "wrong-classes", "bad-onnx", "checksum"],
)
def test_add_refuses_a_broken_directory_and_leaves_nothing(store, model_dir, breakage, message):
    breakage(model_dir)
    with pytest.raises(StoreError, match=message):
        store.add(model_dir)
    assert store.list() == []
    assert not store.root.exists() or [p.name for p in store.root.iterdir() if p.name != ".lock"] == []


def _edit_json(model_dir: Path, **changes) -> None:
    meta = json.loads((model_dir / "model.json").read_text())
    meta.update(changes)
    (model_dir / "model.json").write_text(json.dumps(meta))


def test_promote_and_rollback_follow_the_history(store, model_dir):
    stored(store, model_dir, 3)
    assert store.current() is None and store.history() == []
    for name in ("v0001", "v0002", "v0003"):
        store.promote(name)
    assert store.current() == "v0003"
    assert (store.root / "current").read_text() == "v0003\n"
    assert store.rollback() == "v0002" and store.current() == "v0002"
    assert store.rollback() == "v0001" and store.current() == "v0001"
    with pytest.raises(StoreError, match="nothing to roll back to"):
        store.rollback()
    assert store.current() == "v0001"


def test_promoting_the_current_version_again_changes_nothing(store, model_dir):
    stored(store, model_dir, 2)
    store.promote("v0001")
    store.promote("v0002")
    store.promote("v0002")
    assert store.history() == ["v0001", "v0002"]
    assert store.rollback() == "v0001"


def test_a_corrupt_version_never_becomes_current(store, model_dir):
    stored(store, model_dir, 2)
    store.promote("v0001")
    onnx = store.path("v0002") / "model.onnx"
    onnx.chmod(0o644)
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="checksum mismatch"):
        store.promote("v0002")
    assert store.current() == "v0001"


def test_bad_metadata_in_a_stored_version_is_refused(store, model_dir):
    stored(store, model_dir, 1)
    version = store.path("v0001")
    (version / "model.json").chmod(0o644)
    _edit_json(version, input_size=-1)
    with pytest.raises(StoreError, match="input_size"):
        store.promote("v0001")
    _edit_json(version, input_size=32, mean=None)
    with pytest.raises(StoreError, match="'mean' must be three numbers"):
        store.promote("v0001")
    (version / "model.json").write_text(json.dumps({"classes": ["kaishu"]}))
    with pytest.raises(StoreError, match="missing 'input_size'"):
        store.promote("v0001")
    assert store.current() is None


def test_rollback_refuses_a_target_that_no_longer_verifies(store, model_dir):
    stored(store, model_dir, 2)
    store.promote("v0001")
    store.promote("v0002")
    (store.path("v0001") / "sha256").chmod(0o644)
    (store.path("v0001") / "sha256").write_text("0" * 64)
    with pytest.raises(StoreError, match="checksum"):
        store.rollback()
    assert store.current() == "v0002"


@pytest.mark.parametrize("name", ["../etc", "v1", "current", "v0001/../v0002", ""])
def test_version_names_are_checked(store, model_dir, name):
    stored(store, model_dir, 2)
    with pytest.raises(StoreError):
        store.promote(name)


def test_unknown_version_lists_the_known_ones(store, model_dir):
    stored(store, model_dir, 1)
    with pytest.raises(StoreError, match=r"no version v0009 .*versions: v0001"):
        store.path("v0009")


def test_current_path_falls_back_to_the_packaged_model(store, model_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(store_module, "default_model_path", lambda: tmp_path / "missing")
    with pytest.raises(StoreError, match="no model to serve"):
        store.current_path()
    monkeypatch.setattr(store_module, "default_model_path", lambda: model_dir)
    assert store.current_path() == model_dir
    store.promote(store.add(model_dir))
    assert store.current_path() == store.root / "v0001"


def test_packaged_default_model_lives_in_the_package():
    assert store_module.default_model_path() == ROOT / "model_store" / "default_model"


def test_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLIGRAPHY_HOME", str(tmp_path / "home"))
    assert ModelStore.from_env().root == tmp_path / "home" / "models"
    monkeypatch.delenv("CALLIGRAPHY_HOME")
    assert ModelStore.from_env().root == Path("var") / "models"


def test_concurrent_adds_get_distinct_names(store, model_dir):
    names: list[str] = []
    threads = [threading.Thread(target=lambda: names.append(store.add(model_dir))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(names) == ["v0001", "v0002", "v0003", "v0004"]


def test_history_is_mended_after_a_promote_killed_between_its_two_writes(store, model_dir):
    stored(store, model_dir, 2)
    store.promote("v0001")
    atomic_write(store.root / "history", "v0001\nv0002\n")  # history written, pointer not yet
    assert store.current() == "v0001" and store.history() == ["v0001"]
    store.promote("v0002")
    assert store.rollback() == "v0001"


def test_history_is_mended_after_a_rollback_killed_between_its_two_writes(store, model_dir):
    stored(store, model_dir, 2)
    store.promote("v0001")
    store.promote("v0002")
    atomic_write(store.root / "history", "v0001\n")  # history shortened, pointer not yet moved back
    assert store.history() == ["v0001", "v0002"]
    assert store.rollback() == "v0001"


PROMOTER = """
import sys
from pathlib import Path
from model_store.store import ModelStore
store = ModelStore(Path(sys.argv[1]))
print("ready", flush=True)
while True:
    store.promote("v0001")
    store.promote("v0002")
"""


def test_pointer_is_never_half_written_even_when_the_writer_is_killed(store, model_dir):
    stored(store, model_dir, 2)
    store.promote("v0001")
    writer = subprocess.Popen(
        [sys.executable, "-c", PROMOTER, str(store.root)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        seen = set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            seen.add((store.root / "current").read_text())
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert seen == {"v0001\n", "v0002\n"}
    assert store.current() in ("v0001", "v0002")
    assert store.history()[-1] == store.current()
    store.verify(store.current())
    assert store.rollback() in ("v0001", "v0002")
