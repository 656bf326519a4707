"""The framing detector: the graph's features output, the logistic fit, and fitting it for a run directory."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from image_factory import encode, solid
from model_factory import DEFAULT_CLASSES, make_model_dir
from onnx import TensorProto, helper
from test_calibrate_run import tinted_page

from calligraphy.cli import main
from model_store.runtime import Classifier
from trainer.framing import FramingError, expose_features, fit_framing, fit_logistic
from trainer.photo_copies import CONDITIONS


def test_expose_features_adds_the_last_linear_layers_input_once(model_dir):
    path = model_dir / "model.onnx"
    assert expose_features(path) == 3
    assert [o.name for o in onnx.load(path).graph.output] == ["probs", "features"]
    before = path.read_bytes()
    assert expose_features(path) == 3
    assert path.read_bytes() == before
    # The test model's features are the normalised channel means (mean 0.5, std 0.5): red is (1, -1, -1).
    features = Classifier(model_dir).features(solid("red"))
    assert features.tolist() == pytest.approx([1.0, -1.0, -1.0], abs=1e-2)


def test_a_graph_without_a_linear_layer_has_no_features(tmp_path):
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Softmax", ["flat"], ["probs"], axis=1),
        ],
        "no_linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(FramingError, match="no linear layer"):
        expose_features(path)


def test_fit_logistic_separates_raw_features_and_balances_the_classes():
    rng = np.random.default_rng(0)
    # Unscaled features, one side 5 times the other: the fit standardises and balances, then returns raw weights.
    few = rng.normal([300.0, 0.02], [20.0, 0.01], (40, 2))
    pages = rng.normal([200.0, 0.02], [20.0, 0.01], (200, 2))
    features = np.vstack([few, pages])
    labels = np.array([True] * 40 + [False] * 200)
    weights, bias = fit_logistic(features, labels)
    predicted = features @ weights + bias > 0
    assert predicted[:40].mean() > 0.9 and (~predicted[40:]).mean() > 0.9
    assert abs(weights[0]) > 0
    with pytest.raises(FramingError, match="both"):
        fit_logistic(features, np.zeros(len(features), dtype=bool))


@pytest.fixture
def run_with_training_images(tmp_path: Path) -> tuple[Path, Path]:
    """A channel-mean run averaging one crop, its 6 validation pages and 9 pages it trained on."""
    rng = random.Random(1)
    data, valid_files = tmp_path / "data", []
    for channel, name in enumerate(DEFAULT_CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(5):
            tinted_page(channel, rng).resize((90, 120)).save(data / name / f"{i}.png")
            if i < 2:
                valid_files.append(f"{name}/{i}.png")
    model = make_model_dir(tmp_path / "run")
    meta = json.loads((model / "model.json").read_text())
    meta |= {"dataset": {"root": str(data), "valid_files": valid_files}, "tta": {"crops": 1}}
    (model / "model.json").write_text(json.dumps(meta))
    return model, data


def test_fit_framing_writes_a_detector_the_runtime_uses(run_with_training_images):
    model, data = run_with_training_images
    block = fit_framing(model, data, n_images=4)
    metadata = json.loads((model / "model.json").read_text())
    assert metadata["framing"] == block
    assert block["tiles"] == 3 and block["features"] == 3 and len(block["weights"]) == 3
    assert "4 training images" in block["fitted_on"]
    assert list(block["flagged"]) == list(CONDITIONS)
    assert all(0 <= share <= 1 for share in block["flagged"].values())
    classifier = Classifier(model)
    assert classifier.framing is not None and classifier.framing.weights.tolist() == block["weights"]
    assert classifier.predict(encode(solid("red", (90, 120)))).label == "kaishu"


def test_fit_framing_uses_only_training_images(run_with_training_images, monkeypatch):
    model, data = run_with_training_images
    seen = []
    monkeypatch.setattr("trainer.framing.photo_copies", lambda img, file, seed: seen.append(file) or {})
    with pytest.raises(FramingError):
        fit_framing(model, data, n_images=100)
    valid = set(json.loads((model / "model.json").read_text())["dataset"]["valid_files"])
    assert len(seen) == 9 and not valid & set(seen)


def test_no_detector_without_a_crop_to_replace_or_with_0_images(run_with_training_images):
    model, data = run_with_training_images
    fit_framing(model, data, n_images=3)
    assert fit_framing(model, data, n_images=0) == {}
    assert "framing" not in json.loads((model / "model.json").read_text())
    fit_framing(model, data, n_images=3)
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps(meta | {"tta": {"crops": 0}}))
    assert fit_framing(model, data, n_images=3) == {}
    assert Classifier(model).framing is None


def test_calibrate_fits_the_detector_first_and_can_drop_it(run_with_training_images, capsys):
    model, data = run_with_training_images
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--framing-images", "3"]) == 0
    metadata = json.loads((model / "model.json").read_text())
    assert "3 training images" in metadata["framing"]["fitted_on"]
    assert metadata["calibration"]["temperature"] == metadata["temperature"]
    assert capsys.readouterr().out.startswith(f"calibrated {model}: runtime with 1 crop(s) ")
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--framing-images", "0"]) == 0
    assert "framing" not in json.loads((model / "model.json").read_text())
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--model", str(model), "--data", str(data), "--framing-images", "-1"])
    assert exit_info.value.code == 2 and "must be at least 0" in capsys.readouterr().err
