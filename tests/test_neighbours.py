"""The memory of training images beside the head: its votes, the runtime's blend, and building it for a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from image_factory import encode, solid
from test_framing import run_with_training_images  # noqa: F401 (a fixture)

from calligraphy.cli import main
from model_store.metadata import ModelError
from model_store.neighbours import NEIGHBOURS_FILE, Neighbours, NeighbourSettings
from model_store.runtime import Classifier
from trainer.framing import expose_features
from trainer.neighbours import build_neighbours, trained_files

AXES = np.eye(3, dtype=np.float32)


def memory(k: int = 3, tau: float = 0.1, weight: float = 0.5) -> Neighbours:
    """Three training images per class, each near its class's axis."""
    rng = np.random.default_rng(0)
    features = np.repeat(AXES, 3, axis=0) + rng.normal(0, 0.05, (9, 3)).astype(np.float32)
    return Neighbours(
        features=features / np.linalg.norm(features, axis=1, keepdims=True),
        labels=np.repeat(np.arange(3), 3),
        n_classes=3,
        settings=NeighbourSettings(k=k, tau=tau, weight=weight),
    )


def test_the_nearest_images_vote_for_their_class():
    votes = memory().votes(np.array([[0.1, 2.0, 0.0], [0.0, 0.2, 5.0]]))
    assert votes.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert votes.argmax(axis=1).tolist() == [1, 2]
    assert votes[0, 1] > 0.99  # the three nearest are lishu's; k = 3 leaves the others out


def test_more_neighbours_and_a_softer_tau_spread_the_vote():
    between = np.array([[1.0, 0.8, 0.0]])
    sharp, soft = memory(k=3).votes(between)[0], memory(k=9, tau=1.0).votes(between)[0]
    assert sharp.tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    assert soft[1] > 0.2 and soft[2] > 0.05 and soft.argmax() == 0


def test_the_blend_weighs_the_votes_against_the_head():
    probs, features = np.array([[0.2, 0.7, 0.1]]), np.array([[1.0, 0.0, 0.0]])
    assert memory(weight=0.0).blend(probs, features) == pytest.approx(probs)
    assert memory(weight=1.0).blend(probs, features).argmax() == 0
    assert memory(weight=0.5).blend(probs, features)[0] == pytest.approx([0.6, 0.35, 0.05], abs=1e-3)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"k": 0, "tau": 0.1, "weight": 0.5}, "k"),
        ({"k": 3, "tau": 0, "weight": 0.5}, "tau"),
        ({"k": 3, "tau": 0.1, "weight": 1.5}, "weight"),
        ({"k": True, "tau": 0.1, "weight": 0.5}, "k"),
        ("yes", "object"),
    ],
)
def test_a_malformed_block_is_refused(block, message):
    with pytest.raises(ValueError, match=message):
        NeighbourSettings.from_metadata({"neighbours": block})
    assert NeighbourSettings.from_metadata({}) is None


def with_memory(model_dir: Path, features: np.ndarray, labels: list[int], weight: float = 0.5) -> Path:
    """Give the channel-mean test model a `features` output and a memory of the given training features."""
    expose_features(model_dir / "model.onnx")
    np.savez(model_dir / NEIGHBOURS_FILE, features=features.astype(np.float16), labels=np.array(labels, np.int16))
    meta = json.loads((model_dir / "model.json").read_text())
    meta["neighbours"] = {"k": 2, "tau": 0.1, "weight": weight, "pictures": len(labels)}
    (model_dir / "model.json").write_text(json.dumps(meta))
    return model_dir


def test_the_runtime_blends_the_memory_before_the_temperature(model_dir):
    red = encode(solid("red"))
    assert Classifier(model_dir).predict(red).label == "kaishu"
    # Red pictures' features are (1, -1, -1); a memory that remembers red training images as lishu outvotes the head.
    with_memory(model_dir, np.array([[1.0, -1.0, -1.0], [1.0, -0.9, -1.0], [-1.0, 1.0, -1.0]]), [1, 1, 1], weight=0.9)
    prediction = Classifier(model_dir).predict(red)
    assert prediction.label == "lishu" and sum(prediction.probs.values()) == pytest.approx(1.0)
    assert Classifier(model_dir).predict_batch([red, b"not an image"])[0].label == "lishu"


def test_a_memory_that_does_not_fit_the_model_is_refused(model_dir):
    with_memory(model_dir, np.ones((2, 5)), [0, 1])
    with pytest.raises(ModelError, match=r"features must be \[N, 3\]"):
        Classifier(model_dir)
    with_memory(model_dir, np.ones((2, 3)), [0, 7])
    with pytest.raises(ModelError, match="class indices below 3"):
        Classifier(model_dir)
    (model_dir / NEIGHBOURS_FILE).write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="unreadable"):
        Classifier(model_dir)
    (model_dir / NEIGHBOURS_FILE).unlink()
    with pytest.raises(ModelError, match=r"no neighbours\.npz"):
        Classifier(model_dir)


def test_build_neighbours_remembers_only_the_training_images(run_with_training_images):  # noqa: F811
    model, data = run_with_training_images
    meta = json.loads((model / "model.json").read_text())
    meta["dataset"]["excluded_files"] = [{"file": "lishu/4.png", "reason": "test"}]
    (model / "model.json").write_text(json.dumps(meta))
    files = trained_files(model, data)
    assert len(files) == 8 and "lishu/4.png" not in files and not set(files) & set(meta["dataset"]["valid_files"])
    labels = [["kaishu", "lishu", "xiaozhuan"].index(f.split("/")[0]) for f in files]
    block = build_neighbours(model, data, k=3)
    assert block == {"k": 3, "tau": 0.1, "weight": 0.5, "pictures": 8}
    with np.load(model / NEIGHBOURS_FILE) as npz:
        assert npz["features"].shape == (8, 3) and npz["features"].dtype == np.float16
        assert npz["labels"].tolist() == labels
        assert np.linalg.norm(npz["features"].astype(np.float32), axis=1) == pytest.approx(np.ones(8), abs=1e-3)
    classifier = Classifier(model)
    assert classifier.neighbours is not None and classifier.neighbours.settings.k == 3
    assert classifier.predict(encode(solid("blue", (90, 120)))).label == "xiaozhuan"


def test_calibrate_builds_the_memory_and_removes_it(run_with_training_images, capsys):  # noqa: F811
    model, data = run_with_training_images
    args = ["calibrate", "--model", str(model), "--data", str(data), "--framing-images", "3"]
    assert main([*args, "--neighbours"]) == 0
    metadata = json.loads((model / "model.json").read_text())
    assert metadata["neighbours"]["pictures"] == 9 and (model / NEIGHBOURS_FILE).is_file()
    assert metadata["calibration"]["temperature"] == metadata["temperature"]
    assert main([*args, "--no-neighbours"]) == 0
    assert "neighbours" not in json.loads((model / "model.json").read_text())
    assert not (model / NEIGHBOURS_FILE).exists()
    assert Classifier(model).neighbours is None


def test_the_store_keeps_the_memory_with_its_version(run_with_training_images, store):  # noqa: F811
    model, data = run_with_training_images
    build_neighbours(model, data)
    version = store.add(model)
    stored = store.verify(version)
    assert (stored / NEIGHBOURS_FILE).read_bytes() == (model / NEIGHBOURS_FILE).read_bytes()
    assert Classifier(stored).neighbours is not None


@pytest.mark.parametrize(("bias", "label"), [(-10.0, "lishu"), (10.0, "kaishu")])
def test_the_memory_answers_for_pages_only(model_dir, bias, label):
    # A framing detector that calls every picture a page (bias -10) or a few characters (bias +10): the memory of
    # pages outvotes the head on pages and leaves pictures of a few characters to it.
    with_memory(model_dir, np.array([[1.0, -1.0, -1.0], [1.0, -0.9, -1.0]]), [1, 1], weight=0.9)
    meta = json.loads((model_dir / "model.json").read_text())
    meta |= {"tta": {"crops": 1}, "framing": {"tiles": 3, "weights": [0.0, 0.0, 0.0], "bias": bias}}
    (model_dir / "model.json").write_text(json.dumps(meta))
    classifier = Classifier(model_dir)
    outputs = classifier.view_outputs([solid("red")])[0]
    assert outputs.few is (bias > 0) and outputs.features.shape == (2, 3)
    assert classifier.predict(encode(solid("red"))).label == label
