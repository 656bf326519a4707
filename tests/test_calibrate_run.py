"""Calibration on photo copies for a run directory, and `calligraphy calibrate` that refits old runs in place."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from model_factory import DEFAULT_CLASSES, make_model_dir
from PIL import Image

from calligraphy.cli import main
from model_store.runtime import Classifier
from trainer.calibrate import calibrate_run, calibration_summary
from trainer.photo_copies import CONDITIONS


def tinted_page(channel: int, rng: random.Random) -> Image.Image:
    """A noisy page whose mean colour leans, more or less, toward `channel`: the channel-mean model's class."""
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 25, (40, 30, 3))
    colour = np.full(3, 120.0)
    colour[channel] += rng.uniform(-15, 60)
    return Image.fromarray(np.clip(colour + noise, 0, 255).astype(np.uint8))


@pytest.fixture
def run_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A run directory (channel-mean model with a validation split) and the dataset it names."""
    rng = random.Random(0)
    data = tmp_path / "data"
    valid_files = []
    for channel, name in enumerate(DEFAULT_CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(6):
            tinted_page(channel, rng).save(data / name / f"{i}.png")
            valid_files.append(f"{name}/{i}.png")
    model = make_model_dir(tmp_path / "run")
    meta = json.loads((model / "model.json").read_text())
    meta["dataset"] = {"root": str(data), "valid_files": valid_files}
    (model / "model.json").write_text(json.dumps(meta))
    return model, data


def test_calibrate_run_fits_one_temperature_and_reports_robustness(run_dir):
    model, data = run_dir
    before = json.loads((model / "model.json").read_text())
    metadata = calibrate_run(model, data)
    assert json.loads((model / "model.json").read_text()) == metadata
    assert (model / "reliability.png").stat().st_size > 0
    assert metadata["temperature"] > 0 and metadata["temperature"] != 1.0
    assert metadata["calibration"]["temperature"] == metadata["temperature"]
    assert "18 validation images" in metadata["calibration"]["fitted_on"]
    metrics = metadata["metrics"]
    for key in ("ece_raw", "ece", "ece_photos_raw", "ece_photos"):
        assert 0 <= metrics[key] <= 1, key
    assert list(metrics["robustness"]) == list(CONDITIONS)
    assert all(0 <= acc <= 1 for acc in metrics["robustness"].values())
    assert metrics["robustness"]["inverted"] < metrics["robustness"]["original"]
    assert sum(b["n"] for b in metadata["calibration"]["bins"]) == 18
    assert sum(b["n"] for b in metadata["calibration"]["bins_photos"]) == 18 * (len(CONDITIONS) - 1)
    for key in ("classes", "input_size", "mean", "std", "dataset", "arch", "created_at"):
        assert metadata[key] == before[key], key
    assert metrics["accuracy"] == before["metrics"]["accuracy"]
    assert "photo-copy accuracy" in calibration_summary(metadata)


def test_calibrate_command_rewrites_the_calibration_and_keeps_everything_else(run_dir, capsys):
    model, data = run_dir
    (model / "model.json").write_text(
        json.dumps({**json.loads((model / "model.json").read_text()), "temperature": 3.0, "calibration": {"old": 1}})
    )
    before = json.loads((model / "model.json").read_text())
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"calibrated {model}: runtime with 0 crop(s) ")
    after = json.loads((model / "model.json").read_text())
    assert after["temperature"] != 3.0 and after["calibration"]["seed"] == 1
    assert "old" not in after["calibration"]
    changed = {"temperature", "calibration", "metrics"}
    assert {k: v for k, v in after.items() if k not in changed} == {k: v for k, v in before.items() if k not in changed}
    new_metrics = {"ece_raw", "ece", "ece_photos_raw", "ece_photos", "robustness", "runtime_accuracy", "runtime_crops"}
    assert {k: v for k, v in after["metrics"].items() if k not in new_metrics} == before["metrics"]
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--seed", "1"]) == 0
    assert json.loads((model / "model.json").read_text()) == after  # the same copies, the same fit


def _break(model: Path, data: Path, how: str) -> tuple[Path, Path]:
    if how == "no model dir":
        return model.parent / "missing", data
    if how == "no data dir":
        return model, data.parent / "missing"
    if how == "stored version":
        (model / "sha256").write_text("0" * 64)
    elif how == "no split":
        meta = json.loads((model / "model.json").read_text())
        del meta["dataset"]
        (model / "model.json").write_text(json.dumps(meta))
    elif how == "file missing":
        (data / "lishu" / "3.png").unlink()
    elif how == "no model.onnx":
        (model / "model.onnx").unlink()
    return model, data


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no model dir", "model directory .* does not exist"),
        ("no data dir", "data directory .* does not exist"),
        ("stored version", "stored version, and those are read-only"),
        ("no split", "lists no dataset.valid_files: not a training run"),
        ("file missing", "cannot read .*lishu/3.png: No such file or directory: is it the run's dataset"),
        ("no model.onnx", "model.onnx"),
    ],
)
def test_calibrate_command_refuses_bad_paths_in_one_line(run_dir, capsys, how, message):
    model, data = _break(*run_dir, how)
    before = (run_dir[0] / "model.json").read_text()
    assert main(["calibrate", "--model", str(model), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("calligraphy calibrate: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert (run_dir[0] / "model.json").read_text() == before


def test_calibrate_divides_the_training_split_s_class_shares_out_and_can_drop_them(run_dir, capsys):
    model, data = run_dir
    meta = json.loads((model / "model.json").read_text())
    # 6 validation images per class, and training pages 10 kaishu (one of them excluded), 2 lishu and 4 xiaozhuan.
    meta["dataset"] |= {
        "per_class": {"kaishu": 16, "lishu": 8, "xiaozhuan": 10},
        "excluded_files": [{"file": "kaishu/k9.png", "reason": "running script"}],
    }
    (model / "model.json").write_text(json.dumps(meta))
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--class-prior"]) == 0
    after = json.loads((model / "model.json").read_text())
    assert after["class_prior"] == pytest.approx({"kaishu": 9 / 15, "lishu": 2 / 15, "xiaozhuan": 4 / 15})
    # The accuracy recorded is the runtime's, which reads the prior (and the temperature fitted with it).
    classifier = Classifier(model)
    assert classifier.prior == pytest.approx([9 / 15, 2 / 15, 4 / 15])
    files = meta["dataset"]["valid_files"]
    answers = [classifier.predict((data / f).read_bytes()).label == f.split("/")[0] for f in files]
    assert after["metrics"]["runtime_accuracy"] == pytest.approx(np.mean(answers))
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--no-class-prior"]) == 0
    assert "class_prior" not in json.loads((model / "model.json").read_text())
    assert Classifier(model).prior is None
    capsys.readouterr()
    del meta["dataset"]["per_class"]
    (model / "model.json").write_text(json.dumps(meta))
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--class-prior"]) == 2
    assert "does not give every class a training image: no class prior" in capsys.readouterr().err
