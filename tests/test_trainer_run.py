"""End to end on the CPU at tiny sizes: train, export, and check the ONNX model against PyTorch."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from cli_checks import assert_refused_in_one_line
from datasets import make_dataset, pattern_image, scribble_image, tiny_config
from model_factory import make_model_dir

from calligraphy.cli import main
from model_store.runtime import Classifier, calibrate
from trainer.config import TrainConfig
from trainer.export import ExportError, check_parity, export_onnx
from trainer.photo_copies import CONDITIONS
from trainer.weights import offline_weights


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the tests below (fastai's import and a run cost seconds)."""
    from trainer.pipeline import run

    root = make_dataset(tmp_path_factory.mktemp("data") / "data", per_class=10)
    (root / "dots" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "vertical" / "empty.png").write_bytes(b"")
    exclude = root.parent / "exclude.csv"
    exclude.write_text("file,label,reason\ndots/dots_000.png,dots,looks wrong\nlishu/gone.jpg,lishu,not here\n")
    out = tmp_path_factory.mktemp("out") / "v"
    config = tiny_config(root, out, sizes=(32, 48), epochs_unfrozen=1, export_learner=True, exclude=exclude)
    return root, out, run(config)


def test_version_directory_is_complete(trained):
    from trainer.pipeline import summary_line

    root, out, metadata = trained
    for name in ("model.onnx", "model.json", "confusion.png", "history.png", "reliability.png"):
        assert (out / name).stat().st_size > 0, name
    written = json.loads((out / "model.json").read_text())
    assert written == json.loads(json.dumps(metadata))
    assert written["classes"] == ["dots", "horizontal", "vertical"]
    assert written["input_size"] == 48
    assert written["mean"] == [0.5, 0.5, 0.5] and written["std"] == [0.5, 0.5, 0.5]
    assert written["dataset"]["skipped"] == 2
    assert {s["file"] for s in written["dataset"]["skipped_files"]} == {"dots/broken.jpg", "vertical/empty.png"}
    valid_files = written["dataset"]["valid_files"]
    assert len(valid_files) == written["metrics"]["n_valid"] > 0
    assert all((root / f).is_file() for f in valid_files)
    excluded = {e["file"] for e in written["dataset"]["excluded_files"]}
    assert excluded == {"dots/dots_000.png"} - set(valid_files) and written["dataset"]["excluded"] == len(excluded)
    assert written["training"]["exclude"].endswith("exclude.csv")
    assert len(written["history"]) == 4  # 2 stages x (frozen + unfrozen), one epoch each
    assert written["temperature"] > 0
    assert written["tta"] == {"crops": 1}, "the default recipe averages the whole image with one crop"
    assert written["metrics"]["runtime_crops"] == 1 and 0 <= written["metrics"]["runtime_accuracy"] <= 1
    assert written["calibration"]["temperature"] == written["temperature"]
    assert "photo-like copies" in written["calibration"]["fitted_on"]
    for key in ("bins_raw", "bins", "bins_photos_raw", "bins_photos"):
        assert written["calibration"][key], key
    for key in ("ece_raw", "ece", "ece_photos_raw", "ece_photos"):
        assert 0 <= written["metrics"][key] <= 1, key
    assert list(written["metrics"]["robustness"]) == list(CONDITIONS)
    assert all(0 <= acc <= 1 for acc in written["metrics"]["robustness"].values())
    assert "on photo copies; photo-copy accuracy" in summary_line(written)
    assert set(written["metrics"]["per_class"]) == set(written["classes"])
    assert written["onnx"]["parity_max_abs_diff"] <= 1e-4
    # The framing detector reads fastai's head: its 512 hidden units, fitted on copies of training images only.
    framing = written["framing"]
    assert framing["tiles"] == 3 and len(framing["weights"]) == framing["features"] == 512
    assert "training images" in framing["fitted_on"]


def test_onnx_has_dynamic_batch_and_returns_probabilities(trained):
    _, out, _ = trained
    model = onnx.load(str(out / "model.onnx"))
    assert model.opset_import[0].version >= 17
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["probs", "features"]
    for n in (1, 5):
        probs = session.run(["probs"], {"image": np.random.default_rng(n).normal(size=(n, 3, 48, 48)).astype("f4")})[0]
        assert probs.shape == (n, 3)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_parity_check_fails_loudly_on_a_different_model(trained, tmp_path):
    torch.manual_seed(0)
    one = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    export_onnx(one, tmp_path / "m.onnx", 16)
    batch = torch.randn(4, 3, 16, 16)
    assert check_parity(one, tmp_path / "m.onnx", batch) < 1e-5
    with pytest.raises(ExportError, match="disagrees"):
        check_parity(other, tmp_path / "m.onnx", batch)


def test_cli_refuses_a_single_class_before_training(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", per_class=3, classes=("dots",))
    status = main(["train", "--data", str(root), "--out", str(tmp_path / "out")])
    assert_refused_in_one_line(status, capsys, "at least two class folders", tmp_path / "out")


def test_cli_reports_a_malformed_exclusion_list_in_one_line(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", per_class=3)
    (tmp_path / "exclude.csv").write_text("file\ndots/dots_000.png\n")
    status = main(
        ["train", "--data", str(root), "--out", str(tmp_path / "out"), "--exclude", str(tmp_path / "exclude.csv")]
    )
    assert_refused_in_one_line(status, capsys, "missing column(s) label, reason", tmp_path / "out")


def test_offline_weights_map_onto_timm():
    import timm

    path = offline_weights("tf_efficientnet_lite0")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert offline_weights("resnet18") is None


def test_runtime_matches_the_fastai_learner(trained, tmp_path):
    """Serving preprocesses exactly as training did: the same probabilities as `learn.predict`, to 1e-3."""
    import random

    from fastai.vision.all import PILImage, load_learner

    _, out, metadata = trained
    learn = load_learner(out / "learner.pkl")
    classifier = Classifier(out, crops=0)
    rng = random.Random(7)
    images = [
        pattern_image(p, rng, width=w, height=h)
        for p, (w, h) in zip(("dots", "horizontal", "vertical"), ((72, 64), (300, 120), (90, 400)), strict=True)
    ]
    images += [scribble_image(rng, width=517, height=333), scribble_image(rng, width=40, height=41)]
    for i, img in enumerate(images):
        path = tmp_path / f"{i}.png"
        img.save(path)
        _, _, expected = learn.predict(PILImage.create(path))
        expected = calibrate(expected.numpy()[None], metadata["temperature"])[0]
        got = classifier.predict(path.read_bytes())
        np.testing.assert_allclose(list(got.probs.values()), expected, atol=1e-3, err_msg=f"image {i}")


def test_a_run_can_continue_from_another_runs_weights(trained, tmp_path):
    """--init-from starts from the earlier run's trained weights, not ImageNet's: a frozen stage keeps its body."""
    from fastai.vision.all import load_learner

    from trainer.pipeline import run

    root, previous, _ = trained
    config = tiny_config(root, tmp_path / "continued", sizes=(64,), export_learner=True, init_from=previous)
    metadata = run(config)
    assert metadata["input_size"] == 64 and metadata["training"]["init_from"] == str(previous)
    before = load_learner(previous / "learner.pkl").model[0].model.conv_stem.weight
    after = load_learner(tmp_path / "continued" / "learner.pkl").model[0].model.conv_stem.weight
    fresh = torch.load(offline_weights("tf_efficientnet_lite0"), weights_only=True)["conv_stem.weight"]
    assert torch.equal(after, before)
    assert not torch.equal(after, fresh)


def test_cli_refuses_a_run_without_learner_in_one_line(trained, tmp_path, capsys):
    root, _, _ = trained
    (tmp_path / "run").mkdir()
    status = main(["train", "--data", str(root), "--out", str(tmp_path / "out"), "--init-from", str(tmp_path / "run")])
    assert_refused_in_one_line(status, capsys, "neither a run with a learner.pkl", tmp_path / "out")


def test_cli_refuses_a_run_trained_on_other_classes_in_one_line(trained, tmp_path, capsys):
    _, previous, _ = trained
    data = make_dataset(tmp_path / "data", per_class=10, classes=("dots", "vertical"))
    status = main(["train", "--data", str(data), "--out", str(tmp_path / "out"), "--init-from", str(previous)])
    assert_refused_in_one_line(status, capsys, "was trained on classes", tmp_path / "out")


def _served_copy(run_dir, target):
    """A run's version as the store keeps it: model.json and model.onnx, no learner.pkl."""
    target.mkdir()
    for name in ("model.json", "model.onnx"):
        shutil.copy(run_dir / name, target / name)
    return target


def test_a_run_can_continue_from_a_served_model_version(trained, tmp_path):
    """--init-from a version (only its ONNX graph, BatchNorms folded into the convolutions) rebuilds the served
    network: the same probabilities as the run that was exported."""
    from fastai.vision.all import load_learner

    from trainer.data import scan_dataset
    from trainer.train import build_learner

    root, previous, _ = trained
    served = _served_copy(previous, tmp_path / "served")
    dataset = scan_dataset(root)
    valid_idx = list(range(0, len(dataset.items), 4))
    config = TrainConfig(data=root, out=root, sizes=(48,), bs=8, seed=1, exclude=None, init_from=served)
    rebuilt = build_learner(dataset, valid_idx, config, torch.device("cpu")).model
    original = load_learner(previous / "learner.pkl", cpu=True).model
    assert not torch.equal(rebuilt[0].model.conv_stem.weight, original[0].model.conv_stem.weight)  # folded
    x = torch.rand(8, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        expected = torch.softmax(original.eval()(x), dim=1)
        got = torch.softmax(rebuilt.eval()(x), dim=1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_served_weights_keep_the_served_function_in_train_mode(trained, tmp_path):
    """In train mode BatchNorm uses the batch's own statistics. Measured on the training images, they make a
    training batch of exactly those images compute what was served, so training goes on from the served model;
    the folded graph alone (identity BatchNorms) would normalise every layer's output away."""
    from fastai.vision.all import load_learner

    from trainer.served_weights import load_served_weights

    _, previous, _ = trained
    served = _served_copy(previous, tmp_path / "served")
    network = load_learner(previous / "learner.pkl", cpu=True).model
    images = torch.rand(16, 3, 48, 48) * 2 - 1
    load_served_weights(network, served, "tf_efficientnet_lite0", ["dots", "horizontal", "vertical"], [(images,)])
    body = network[0]
    assert _train_mode_drift(body, images) < 1e-4
    for bn in (m for m in body.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        with torch.no_grad():
            bn.bias.sub_(bn.running_mean)
            bn.running_mean.zero_()
            bn.running_var.fill_(1 - bn.eps)
            bn.weight.fill_(1)
    assert _train_mode_drift(body, images) > 0.1


def _train_mode_drift(body: torch.nn.Module, batch: torch.Tensor) -> float:
    """How far the body's features move when its BatchNorms use the batch's statistics (relative L2)."""
    with torch.no_grad():
        served = body.eval()(batch)
        training = copy.deepcopy(body).train()(batch)  # a copy: train mode updates the running statistics
    return float((training - served).norm() / served.norm())


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("channel-mean-test-model", "is a channel-mean-test-model model, not tf_efficientnet_lite0"),
        (None, "model.json names no architecture ('arch') to rebuild"),
    ],
)
def test_cli_refuses_a_model_version_of_another_architecture_in_one_line(trained, tmp_path, capsys, arch, message):
    root, _, _ = trained
    served = make_model_dir(tmp_path / "served", classes=("dots", "horizontal", "vertical"))
    if arch is None:
        meta = json.loads((served / "model.json").read_text())
        del meta["arch"]
        (served / "model.json").write_text(json.dumps(meta))
    status = main(["train", "--data", str(root), "--out", str(tmp_path / "out"), "--init-from", str(served)])
    assert_refused_in_one_line(status, capsys, message, tmp_path / "out")


def test_cli_refuses_a_model_version_of_other_classes_in_one_line(trained, tmp_path, capsys):
    _, previous, _ = trained
    served = _served_copy(previous, tmp_path / "served")
    data = make_dataset(tmp_path / "data", per_class=10, classes=("dots", "vertical"))
    status = main(["train", "--data", str(data), "--out", str(tmp_path / "out"), "--init-from", str(served)])
    assert_refused_in_one_line(status, capsys, "was trained on classes", tmp_path / "out")


def test_train_seed_changes_the_data_order_but_not_the_starting_weights(trained):
    """Runs that differ only in --train-seed start from the same head, so their weights can be averaged."""
    from trainer.data import scan_dataset
    from trainer.train import build_learner

    root, _, _ = trained
    dataset = scan_dataset(root)
    valid_idx = list(range(0, len(dataset.items), 4))

    def start(train_seed: int | None):
        config = TrainConfig(data=root, out=root, sizes=(32,), bs=8, seed=1, exclude=None, train_seed=train_seed)
        learn = build_learner(dataset, valid_idx, config, torch.device("cpu"))
        return learn.model.state_dict(), list(learn.dls.train.get_idxs())

    (weights_1, order_1), (weights_2, order_2), (_, order_1b) = start(1), start(2), start(1)
    assert all(torch.equal(weights_1[k], weights_2[k]) for k in weights_1)
    assert order_1 != order_2 and order_1 == order_1b
    default_weights, _ = start(None)
    assert all(torch.equal(weights_1[k], default_weights[k]) for k in weights_1)
