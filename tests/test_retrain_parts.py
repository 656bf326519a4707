"""Retraining's parts on their own, with a real SQLite database, image store and ONNX models: which labels are
agreed, what the exported training set holds, the evaluation set, the gate, its picture, settings, the run log."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from model_factory import make_model_dir
from PIL import Image
from retrain_data import BLUE, GREEN, NEW_TINTS, RED, SERVED_TINTS, make_tinted_dataset, page_bytes

from bot.config import Settings
from bot.confusion_image import confusion_png
from bot.db import ADMIN, USER, Database, NewPrediction
from bot.eval_set import EvalSetError, configured_eval_set, validation_split_set
from bot.gate import Verdict, judge
from bot.image_store import ImageStore
from bot.runs import FAILED, REJECTED, RunLog
from bot.training_set import export_training_set
from calligraphy.cli import main
from calligraphy.errors import UsageError
from model_store.evaluate import Evaluation
from model_store.store import ModelStore, sha256_of

TOKEN = "123:secret-token"
PROBS = {"kaishu": 0.4, "lishu": 0.35, "xiaozhuan": 0.25}


class Labelled:
    """A real database and image store, and a way to record who labelled which image as what."""

    def __init__(self, root: Path) -> None:
        self.db = Database(f"sqlite:///{root / 'bot.sqlite3'}")
        self.images = ImageStore(root / "images")

    def label(self, data: bytes, label: str, by: int, source: str = USER) -> str:
        name = self.images.save(data)
        new = NewPrediction(by, by, "file", "unique", "v0001", PROBS, low_confidence=True, image=name)
        record = self.db.add_prediction(new)
        self.db.set_label(record.id, label, by, source)
        return name


@pytest.fixture
def labelled(tmp_path):
    parts = Labelled(tmp_path)
    yield parts
    parts.db.close()


def exported(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_export_admin_labels_win_user_conflicts_are_left_out_duplicates_once(tmp_path, labelled):
    base = make_tinted_dataset(tmp_path / "base", {"kaishu": NEW_TINTS["kaishu"], "lishu": NEW_TINTS["lishu"]}, 2, 0)
    # The same picture twice in the base data, under another name.
    shutil.copyfile(base / "kaishu" / "kaishu_0_000.png", base / "kaishu" / "later_copy.png")
    agreed, disputed, overruled = page_bytes(SERVED_TINTS["lishu"], 1), page_bytes(BLUE, 2), page_bytes(RED, 3)
    held, unknown = page_bytes(GREEN, 4), page_bytes(GREEN, 5)
    agreed_name = labelled.label(agreed, "lishu", by=1)
    labelled.label(agreed, "lishu", by=2)
    labelled.label(disputed, "kaishu", by=1)
    labelled.label(disputed, "lishu", by=2)
    labelled.label(overruled, "kaishu", by=3)
    overruled_name = labelled.label(overruled, "lishu", by=42, source=ADMIN)
    labelled.label((base / "lishu" / "lishu_0_001.png").read_bytes(), "kaishu", by=4)
    labelled.label(held, "kaishu", by=42, source=ADMIN)
    labelled.label(unknown, "xiaozhuan", by=5)

    out = tmp_path / "export"
    held_out = {hashlib.sha256(held).hexdigest()}
    summary = export_training_set(base, labelled.db.labels(), labelled.images, out, held_out)

    assert exported(out) == {
        "kaishu/kaishu_0_000.png",
        "kaishu/kaishu_0_001.png",
        "lishu/lishu_0_000.png",
        "lishu/lishu_0_001.png",
        f"lishu/{agreed_name}",
        f"lishu/{overruled_name}",
    }
    assert (out / "lishu" / agreed_name).read_bytes() == agreed
    assert summary.per_class == {"kaishu": 2, "lishu": 4}
    assert (summary.base, summary.admin, summary.user) == (4, 1, 1)
    # The base copy, and the base image a user sent back with another label.
    assert summary.duplicates == 2
    assert (summary.conflicts, summary.held_out, summary.unusable) == (1, 1, 1)
    assert summary.line() == (
        "6 images: 4 base, 1 labelled by admins, 1 by users; 2 duplicates; 1 with conflicting user labels; "
        "1 evaluation images held out; 1 missing or of an unknown class"
    )
    # Hard links: the export costs no space.
    assert (out / "kaishu" / "kaishu_0_000.png").stat().st_ino == (base / "kaishu" / "kaishu_0_000.png").stat().st_ino


def test_export_skips_base_images_that_are_evaluation_images(tmp_path, labelled):
    base = make_tinted_dataset(tmp_path / "base", NEW_TINTS, 2, 0)
    held_out = {sha256_of(base / "lishu" / "lishu_0_000.png")}
    summary = export_training_set(base, [], labelled.images, tmp_path / "out", held_out)
    assert "lishu/lishu_0_000.png" not in exported(tmp_path / "out")
    assert summary.per_class == {"kaishu": 2, "lishu": 1, "xiaozhuan": 2} and summary.held_out == 1


def test_labels_since_a_moment(labelled):
    labelled.label(page_bytes(RED, 1), "kaishu", by=1)
    [first] = labelled.db.labels()
    labelled.label(page_bytes(RED, 2), "lishu", by=2)
    assert [label.label for label in labelled.db.labels(first.labeled_at)] == ["lishu"]
    assert len(labelled.db.labels()) == 2


def test_configured_eval_set(tmp_path):
    data = make_tinted_dataset(tmp_path / "eval", SERVED_TINTS, 2, 3)
    eval_set = configured_eval_set(data)
    assert eval_set.root == data and eval_set.n == 6 and len(eval_set.digests) == 6
    (tmp_path / "empty" / "kaishu").mkdir(parents=True)
    with pytest.raises(EvalSetError, match="holds no images"):
        configured_eval_set(tmp_path / "empty")


def test_validation_split_of_the_served_model_from_base_and_kept_images(tmp_path, labelled):
    base = make_tinted_dataset(tmp_path / "base", NEW_TINTS, 2, 0)
    kept = labelled.images.save(page_bytes(RED, 9))
    (tmp_path / "secret").write_bytes(page_bytes(RED, 10))
    valid = ["kaishu/kaishu_0_000.png", f"lishu/{kept}", "lishu/gone.png", "../secret", "kaishu/../../secret"]
    eval_set = validation_split_set({"dataset": {"valid_files": valid}}, "v0003", base, labelled.images, tmp_path / "e")
    assert exported(tmp_path / "e") == {"kaishu/kaishu_0_000.png", f"lishu/{kept}"}
    assert eval_set.n == 2 and eval_set.source == "validation split of v0003, 3 files missing"
    assert eval_set.digests == {sha256_of(base / "kaishu" / "kaishu_0_000.png"), kept.split(".")[0]}


def test_no_validation_files_is_a_clear_error(tmp_path, labelled):
    with pytest.raises(EvalSetError, match="model v0001 lists no validation files; set CALLIGRAPHY_EVAL_DATA"):
        validation_split_set({}, "v0001", tmp_path, labelled.images, tmp_path / "e")
    with pytest.raises(EvalSetError, match="none of the 1 validation files"):
        validation_split_set({"dataset": {"valid_files": ["a/b.png"]}}, "v1", tmp_path, labelled.images, tmp_path / "f")


@pytest.fixture
def two_versions(tmp_path):
    """v0001 (served) reads red as kaishu; v0002 reads red as lishu: on pages tinted the served way it is all wrong."""
    store = ModelStore(tmp_path / "models")
    store.promote(store.add(make_model_dir(tmp_path / "served")))
    store.add(make_model_dir(tmp_path / "candidate", classes=("lishu", "xiaozhuan", "kaishu")))
    return store, make_tinted_dataset(tmp_path / "eval", SERVED_TINTS, 3, 1)


def test_gate_keeps_a_worse_candidate_unless_the_margin_allows_it(two_versions):
    store, data = two_versions
    verdict = judge(store, "v0002", data, margin=0.0)
    assert (verdict.current_version, verdict.current.accuracy, verdict.candidate.accuracy) == ("v0001", 1.0, 0.0)
    assert not verdict.promote
    assert verdict.lines() == [
        "Accuracy: v0001 100.0% → v0002 0.0% (-100.0 points; margin 0.0)",
        "Recall per class:",
        "  kaishu: 100% → 0% (-100)",
        "  lishu: 100% → 0% (-100)",
        "  xiaozhuan: 100% → 0% (-100)",
    ]
    assert judge(store, "v0002", data, margin=0.99).promote is False
    # The other way round, the served model is the worse one.
    store.promote("v0002")
    assert judge(store, "v0001", data, margin=0.0).promote


def test_equal_accuracy_is_not_worse():
    one = Evaluation(["a", "b"], np.array([[2, 1], [1, 6]]))
    assert Verdict("v1", "v2", one, one, 0.0).promote
    worse = Evaluation(["a", "b"], np.array([[1, 2], [1, 6]]))
    assert not Verdict("v1", "v2", one, worse, 0.0).promote
    assert Verdict("v1", "v2", one, worse, 0.1).promote


def test_confusion_picture_shows_both_matrices(two_versions):
    store, data = two_versions
    png = confusion_png(judge(store, "v0002", data, margin=0.0))
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.width > 2 * img.height > 300
        pixels = np.asarray(img.convert("RGB")).astype(int)
    # Cells shaded by their share of the row: the diagonal of the served (left) panel, and the candidate's
    # column-shifted confusion on the right, are deep blue; other cells stay white.
    blue = (pixels[:, :, 2] - pixels[:, :, 0] > 80) & (pixels[:, :, 0] < 80)
    left, right = blue[:, : img.width // 2], blue[:, img.width // 2 :]
    assert left.sum() > 3 * 40 * 40 and right.sum() > 3 * 40 * 40
    rows_left = np.nonzero(left.any(axis=1))[0]
    rows_right = np.nonzero(right.any(axis=1))[0]
    assert rows_left.min() == rows_right.min() and rows_left.max() == rows_right.max()


def test_retrain_settings(tmp_path):
    env = {
        "TELEGRAM_TOKEN": TOKEN,
        "CALLIGRAPHY_BASE_DATA": str(tmp_path),
        "CALLIGRAPHY_EVAL_DATA": str(tmp_path),
        "BOT_RETRAIN_ARGS": "--sizes 64 --lr 'auto'",
        "BOT_RETRAIN_CRON": " 0  3 * * 1 ",
        "BOT_RETRAIN_MIN_NEW": "5",
        "BOT_RETRAIN_MARGIN": "0.02",
        "BOT_RETRAIN_FROM": " Served ",
    }
    settings = Settings.from_env(env)
    assert settings.retrain_from == "served"
    assert (settings.base_data, settings.eval_data) == (tmp_path, tmp_path)
    assert settings.retrain_args == ("--sizes", "64", "--lr", "auto")
    assert (settings.retrain_cron, settings.retrain_min_new, settings.retrain_margin) == ("0 3 * * 1", 5, 0.02)
    assert settings.runs_dir == Path("var") / "retrain"
    defaults = Settings.from_env({"TELEGRAM_TOKEN": TOKEN})
    assert (defaults.base_data, defaults.eval_data, defaults.retrain_args, defaults.retrain_cron) == (
        None,
        None,
        (),
        None,
    )
    assert (defaults.retrain_min_new, defaults.retrain_margin, defaults.retrain_from) == (20, 0.0, "scratch")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CALLIGRAPHY_BASE_DATA": "/no/such/dir"}, "CALLIGRAPHY_BASE_DATA must be a directory"),
        ({"CALLIGRAPHY_EVAL_DATA": "/no/such/dir"}, "CALLIGRAPHY_EVAL_DATA must be a directory"),
        ({"BOT_RETRAIN_ARGS": "--sizes '64"}, "BOT_RETRAIN_ARGS cannot be split"),
        ({"BOT_RETRAIN_ARGS": "--bs 8 --out=/tmp/x"}, "BOT_RETRAIN_ARGS must not set --out"),
        ({"BOT_RETRAIN_ARGS": "--init-from runs/v1"}, "BOT_RETRAIN_ARGS must not set --init-from"),
        ({"BOT_RETRAIN_FROM": "yesterday"}, "BOT_RETRAIN_FROM must be one of scratch, served"),
        ({"BOT_RETRAIN_CRON": "every monday"}, "BOT_RETRAIN_CRON must be a crontab expression"),
        ({"BOT_RETRAIN_CRON": "0 3 * * 1"}, "BOT_RETRAIN_CRON needs CALLIGRAPHY_BASE_DATA"),
        ({"BOT_RETRAIN_MIN_NEW": "0"}, "BOT_RETRAIN_MIN_NEW must be greater than 0"),
        ({"BOT_RETRAIN_MARGIN": "1"}, "BOT_RETRAIN_MARGIN must be at least 0 and below 1"),
        ({"BOT_RETRAIN_MARGIN": "-0.1"}, "BOT_RETRAIN_MARGIN must be at least 0 and below 1"),
    ],
)
def test_bad_retrain_settings_name_the_variable(env, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        Settings.from_env({"TELEGRAM_TOKEN": TOKEN} | env)


def test_run_log_allows_one_running_run(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    runs = RunLog(db.engine, tmp_path / "retrain")
    first = runs.begin("admin", 42)
    assert first.run_dir == tmp_path / "retrain" / "run-0001" and first.status == "running"
    assert runs.begin("schedule", None) is None
    assert runs.last_judged_start() is None
    runs.finish(first.id, FAILED, "the trainer exited with code 2")
    assert runs.last_judged_start() is None, "a failed run does not reset the count of new labels"
    second = runs.begin("schedule", None)
    runs.update(second.id, stage="training", pid=1234)
    assert [(r.id, r.stage, r.pid) for r in runs.running()] == [(2, "training", 1234)]
    done = runs.finish(second.id, REJECTED, "kept", candidate_accuracy=0.5)
    assert (done.status, done.pid, done.candidate_accuracy) == (REJECTED, None, 0.5) and done.finished_at
    assert runs.last_judged_start() == second.started_at and runs.last().id == 2
    # Reopened, as after a restart: the record is all in the database.
    again = RunLog(Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}").engine, tmp_path / "retrain")
    assert again.last().message == "kept" and again.running() == []
    db.close()


def test_training_set_command_exports_what_retrain_would(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    base = make_tinted_dataset(tmp_path / "base", NEW_TINTS, 2, 0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("CALLIGRAPHY_HOME", str(home))
    monkeypatch.setenv("CALLIGRAPHY_BASE_DATA", str(base))
    assert main(["training-set", "--out", str(tmp_path / "set")]) == 2
    assert f"CALLIGRAPHY_HOME {home} does not exist" in capsys.readouterr().err

    home.mkdir()
    labelled = Labelled(home)
    name = labelled.label(page_bytes(RED, 7), "lishu", by=1)
    labelled.db.close()
    monkeypatch.delenv("CALLIGRAPHY_BASE_DATA")
    assert main(["training-set", "--out", str(tmp_path / "set")]) == 2
    assert "CALLIGRAPHY_BASE_DATA is not set" in capsys.readouterr().err

    # The evaluation set here is the base data itself: all of it is held out, only the label is left.
    monkeypatch.setenv("CALLIGRAPHY_BASE_DATA", str(base))
    monkeypatch.setenv("CALLIGRAPHY_EVAL_DATA", str(base))
    assert main(["training-set", "--out", str(tmp_path / "set")]) == 0
    assert exported(tmp_path / "set") == {f"train/lishu/{name}"}
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"training set: {tmp_path / 'set' / 'train'}: 1 images: 0 base, 0 labelled by admins, 1 by users; "
        "6 evaluation images held out",
        f"evaluation set: {base}: 6 images (CALLIGRAPHY_EVAL_DATA)",
    ]
    assert main(["training-set", "--out", str(tmp_path / "set")]) == 2
    assert "already exists" in capsys.readouterr().err
