"""The predict, evaluate and models commands: output formats, exit codes, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from image_factory import encode, solid
from model_factory import make_model_dir

from calligraphy.cli import main
from model_store.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path, monkeypatch) -> ModelStore:
    """CALLIGRAPHY_HOME in a temporary directory, with no packaged model to fall back on."""
    monkeypatch.setenv("CALLIGRAPHY_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("model_store.store.default_model_path", lambda: tmp_path / "no-default-model")
    return ModelStore.from_env()


def write_image(path: Path, color: str, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(solid(color), fmt))
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_predict_prints_one_json_object_per_image(home, model_dir, tmp_path, capsys):
    red = write_image(tmp_path / "红.png", "red")
    blue = write_image(tmp_path / "blue.jpg", "blue", "JPEG")
    assert main(["predict", "--model", str(model_dir), str(red), str(blue)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [(r["file"], r["label"], r["model"]) for r in lines] == [
        (str(red), "kaishu", "trained"),
        (str(blue), "xiaozhuan", "trained"),
    ]
    assert list(lines[0]["probs"]) == ["kaishu", "lishu", "xiaozhuan"]
    assert sum(lines[0]["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_reports_bad_files_and_exits_2(home, model_dir, tmp_path, capsys):
    good = write_image(tmp_path / "good.png", "red")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    missing = tmp_path / "missing.jpg"
    assert main(["predict", "--model", str(model_dir), str(text), str(good), str(missing)]) == 2
    captured = capsys.readouterr()
    lines = json_lines(captured.out)
    assert [r["file"] for r in lines] == [str(text), str(good), str(missing)]
    assert "not an image" in lines[0]["error"] and lines[1]["label"] == "kaishu"
    assert lines[2] == {"file": str(missing), "error": "cannot read the file: No such file or directory"}
    assert "Traceback" not in captured.err


def test_predict_uses_the_current_version_or_a_named_one(home, tmp_path, capsys):
    home.add(make_model_dir(tmp_path / "a"))
    home.add(make_model_dir(tmp_path / "b", classes=("xiaozhuan", "lishu", "kaishu")))
    home.promote("v0002")
    red = str(write_image(tmp_path / "red.png", "red"))
    assert main(["predict", red]) == 0
    assert main(["predict", "--model", "v0001", "--crops", "2", red]) == 0
    first, second = json_lines(capsys.readouterr().out)
    assert (first["model"], first["label"]) == ("v0002", "xiaozhuan")
    assert (second["model"], second["label"]) == ("v0001", "kaishu")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no model to serve"),
        (["--model", "v0003"], "no version v0003"),
        (["--model", "nowhere/at/all"], "neither a model directory nor a version name"),
    ],
)
def test_predict_without_a_usable_model_is_a_usage_error(home, tmp_path, capsys, args, message):
    image = str(write_image(tmp_path / "red.png", "red"))
    assert main(["predict", *args, image]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("calligraphy predict: ") and message in err and len(err.splitlines()) == 1


def test_predict_rejects_a_negative_crop_count(home, model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--crops", "-1", "--model", str(model_dir), str(tmp_path / "x.png")])
    assert exit_info.value.code == 2 and "must be at least 0" in capsys.readouterr().err


def test_evaluate_prints_a_table_then_json(home, model_dir, tmp_path, capsys):
    data = tmp_path / "data"
    for i in range(3):
        write_image(data / "kaishu" / f"{i}.png", "red")
        write_image(data / "xiaozhuan" / f"{i}.png", "blue")
    write_image(data / "lishu" / "0.png", "red")  # a lishu image the model calls kaishu
    (data / "lishu" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    write_image(data / "caoshu" / "0.png", "green")
    (data / "MANIFEST.csv").write_text("file,label\n")
    assert main(["evaluate", "--model", str(model_dir), "--data", str(data)]) == 0
    out = capsys.readouterr().out.splitlines()
    report = json.loads(out[-1])
    assert report["classes"] == ["kaishu", "lishu", "xiaozhuan"]
    assert report["n"] == 7 and report["skipped"] == 2 and report["skipped_folders"] == ["caoshu"]
    assert report["accuracy"] == pytest.approx(6 / 7)
    assert report["confusion"] == [[3, 0, 0], [1, 0, 0], [0, 0, 3]]
    assert report["per_class"]["kaishu"] == {"precision": 0.75, "recall": 1.0, "n": 3}
    assert report["per_class"]["lishu"] == {"precision": 0.0, "recall": 0.0, "n": 1}
    table = "\n".join(out[:-1])
    assert "kaishu" in table and "0.857" in table and "caoshu" in table


def test_evaluate_with_no_matching_folders_is_a_usage_error(home, model_dir, tmp_path, capsys):
    write_image(tmp_path / "data" / "cats" / "0.png", "red")
    assert main(["evaluate", "--model", str(model_dir), "--data", str(tmp_path / "data")]) == 2
    assert "no images under" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(model_dir), "--data", str(tmp_path / "nothing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_models_add_list_promote_rollback(home, model_dir, capsys):
    (model_dir / "learner.pkl").write_bytes(b"pickle")
    assert main(["models", "add", str(model_dir), "--promote"]) == 0
    assert main(["models", "add", str(model_dir)]) == 0
    assert capsys.readouterr().out.split() == ["v0001", "v0002"]
    assert not (home.path("v0001") / "learner.pkl").exists()

    assert main(["models", "promote", "v0002"]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "current: v0002"
    assert out[1].startswith("  v0001  accuracy 0.800") and out[2].startswith("* v0002  accuracy 0.800")

    assert main(["models", "rollback"]) == 0
    assert capsys.readouterr().out.strip() == "current: v0001"
    assert main(["models", "rollback"]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err


def test_models_errors_are_one_line(home, tmp_path, capsys):
    assert main(["models", "list"]) == 0
    captured = capsys.readouterr()
    assert "no versions in" in captured.out and "packaged default" in captured.err
    assert main(["models", "add", str(tmp_path)]) == 2
    assert main(["models", "promote", "v0001"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"calligraphy models: {tmp_path} is not a model directory: no model.onnx",
        f"calligraphy models: no version v0001 in {home.root} (versions: none)",
    ]


def test_predict_as_an_installed_command(model_dir, tmp_path):
    image = write_image(tmp_path / "blue.webp", "blue", "WEBP")
    result = subprocess.run(
        [sys.executable, "-m", "calligraphy", "predict", "--model", str(model_dir), str(image)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CALLIGRAPHY_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "xiaozhuan"
