"""Retraining through the bot, against the fake Bot API: the real trainer in a child process with a tiny
configuration, the real model store and SQLite. A candidate that is better goes live without a restart, a
worse one is kept aside, a crashed or killed trainer leaves the served model alone, and a bot killed mid-run
is cleaned up after by the next one."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot_harness import ADMIN_ID, Harness, assert_no_errors, harness, make_home, running_bot, settings_for
from datasets import tiny_config
from fake_telegram import FakeChat, FakeTelegram
from model_factory import make_model_dir
from PIL import Image
from retrain_data import NEW_TINTS, SERVED_TINTS, make_tinted_dataset, page_bytes
from test_bot_process import START_TIMEOUT, bot_env, start_bot

from bot.app import RETRAIN_JOB
from bot.db import Database
from bot.runs import RunLog
from model_store.store import ModelStore

# Seconds on a loaded 2-core machine: fastai's import and one epoch at 32 px.
TINY = ("--sizes", "32", "--epochs-frozen", "1", "--epochs-unfrozen", "0", "--bs", "8", "--members", "1")
TINY += ("--finetune-members", "0")
TRAIN_TIMEOUT = 240


async def eventually(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll `condition()` until it is truthy (for things the fake server does not see, like a process dying)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.05)
    return value


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def runs_of(h: Harness) -> RunLog:
    return RunLog(h.services.db.engine, h.settings.runs_dir)


async def give_feedback(h: Harness, user: FakeChat, data: bytes, index: int) -> dict:
    """The user sends a page and taps the style at `index`: a label with a kept image."""
    user.send_photo(data)
    reply = await user.next_message()
    prediction = int(reply["text"].split("#")[1].split()[0])
    await user.answer(user.press(reply, f"fb:{prediction}:{index}"))
    await eventually(lambda: h.services.db.get(prediction).image, what="the image to be kept")
    return reply


def data_dirs(tmp_path: Path, eval_tints: dict) -> dict[str, Path]:
    return {
        "base_data": make_tinted_dataset(tmp_path / "base", NEW_TINTS, 8, 0),
        "eval_data": make_tinted_dataset(tmp_path / "eval", eval_tints, 4, 1),
    }


async def test_admin_retrain_promotes_a_better_candidate_and_the_bot_serves_it(tmp_path, caplog):
    # Tinted the new way, the evaluation pages are all misread by v0001: any candidate trained on them is better.
    async with harness(tmp_path, retrain_args=TINY, **data_dirs(tmp_path, NEW_TINTS)) as h:
        user, admin = h.fake.private_chat(1001), h.fake.private_chat(ADMIN_ID)
        await give_feedback(h, user, page_bytes(NEW_TINTS["lishu"], 50), index=1)
        admin.send_text("/retrain")
        assert (await admin.next_message())["text"].startswith("Retraining run #1 started.")
        admin.send_text("/retrain status")
        assert (await admin.next_message())["text"].startswith("run #1 ")

        report = (await admin.next_message(timeout=TRAIN_TIMEOUT))["text"]
        assert report.startswith("Retraining run #1 (requested by 42): v0002 is promoted and now served.")
        assert "Evaluation set: 12 images (CALLIGRAPHY_EVAL_DATA)." in report
        assert "Accuracy: v0001 0.0% → v0002 " in report and "  kaishu: 0% → " in report
        training = "Training set: 25 images: 24 base, 0 labelled by admins, 1 by users; trained from ImageNet weights."
        assert training in report
        picture = await admin.next_message()
        with Image.open(io.BytesIO(h.fake.file_bytes(picture["photo"][-1]["file_id"]))) as img:
            assert img.format == "PNG"

        store = h.services.store
        assert store.current() == "v0002" and h.services.classifier.version == "v0002"
        assert (store.path("v0002") / "train.log").stat().st_size > 0
        assert sorted(p.name for p in (h.settings.runs_dir / "run-0001").iterdir()) == ["train.log"]
        user.send_photo(page_bytes(NEW_TINTS["kaishu"], 51))
        assert "· model v0002" in (await user.next_message())["text"]

        admin.send_text("/retrain status")
        assert (await admin.next_message())["text"].startswith("last run #1 promoted at ")
        admin.send_text("/rollback")
        assert (await admin.next_message())["text"] == "Rolled back to v0001. Now serving v0001."
    assert_no_errors(caplog, h.fake)


async def test_scheduled_run_waits_for_enough_labels_then_keeps_a_worse_candidate(tmp_path, caplog):
    # Tinted the served model's way, the evaluation pages are all read right by v0001: no candidate beats it.
    caplog.set_level(logging.INFO, logger="bot.retrain")
    dirs = data_dirs(tmp_path, SERVED_TINTS)
    async with harness(tmp_path, retrain_args=TINY, retrain_cron="0 3 * * 1", retrain_min_new=2, **dirs) as h:
        [job] = h.app.job_queue.get_jobs_by_name(RETRAIN_JOB)
        assert str(job.job.trigger) == "cron[month='*', day='*', day_of_week='1', hour='3', minute='0']"
        user, admin = h.fake.private_chat(1002), h.fake.private_chat(ADMIN_ID)
        await give_feedback(h, user, page_bytes(NEW_TINTS["kaishu"], 60), index=2)

        job.job.modify(next_run_time=datetime.now(UTC))
        skipped = "scheduled retraining skipped: 1 new labels, 2 needed"
        await eventually(lambda: skipped in caplog.messages, what="the scheduled job")
        assert h.services.retrainer.status() is None and runs_of(h).last() is None

        await give_feedback(h, user, page_bytes(NEW_TINTS["lishu"], 61), index=0)
        job.job.modify(next_run_time=datetime.now(UTC))
        report = (await admin.next_message(timeout=TRAIN_TIMEOUT))["text"]
        assert report.startswith("Retraining run #1 (on schedule): v0002 is kept but not promoted")
        assert "Still serving v0001." in report and "Accuracy: v0001 100.0% → v0002 " in report
        assert "photo" in await admin.next_message()
        assert h.services.store.current() == "v0001" and h.services.classifier.version == "v0001"
        assert [v.name for v in h.services.store.list()] == ["v0001", "v0002"]
        assert runs_of(h).last().status == "rejected"
        # The labels were used: the next scheduled run waits for new ones.
        job.job.modify(next_run_time=datetime.now(UTC))
        await eventually(lambda: "scheduled retraining skipped: 0 new labels, 2 needed" in caplog.messages)
    assert_no_errors(caplog, h.fake)


async def test_a_crashing_trainer_is_reported_and_the_model_keeps_serving(tmp_path, caplog):
    dirs = data_dirs(tmp_path, SERVED_TINTS)
    async with harness(tmp_path, retrain_args=("--no-such-option",), **dirs) as h:
        user, admin = h.fake.private_chat(1003), h.fake.private_chat(ADMIN_ID)
        admin.send_text("/retrain now")
        assert (await admin.next_message())["text"].startswith("/retrain starts a retraining run now")
        admin.send_text("/retrain status")
        assert (await admin.next_message())["text"] == "No retraining run yet: /retrain starts one."
        admin.send_text("/retrain")
        await admin.next_message()
        report = (await admin.next_message(timeout=60))["text"]
        assert report.startswith("Retraining run #1 failed: the trainer exited with code 2. The end of its log:")
        assert "unrecognized arguments: --no-such-option" in report
        assert report.endswith("Still serving v0001.")
        user.send_photo(page_bytes(SERVED_TINTS["lishu"], 70))
        assert "· model v0001" in (await user.next_message())["text"]
        admin.send_text("/status")
        assert "Retraining: last run #1 failed at " in (await admin.next_message())["text"]
        assert [v.name for v in h.services.store.list()] == ["v0001"]
    assert_no_errors(caplog, h.fake)


async def test_without_an_evaluation_set_the_run_fails_before_training(tmp_path, caplog):
    # The served test model lists no validation files, and CALLIGRAPHY_EVAL_DATA is not set.
    base = make_tinted_dataset(tmp_path / "base", NEW_TINTS, 2, 0)
    async with harness(tmp_path, retrain_args=TINY, base_data=base) as h:
        admin = h.fake.private_chat(ADMIN_ID)
        admin.send_text("/retrain")
        await admin.next_message()
        assert (await admin.next_message())["text"] == (
            "Retraining run #1 failed: no evaluation set: model v0001 lists no validation files; set "
            "CALLIGRAPHY_EVAL_DATA to a folder per class, or serve a model trained by `calligraphy train`\n"
            "Still serving v0001."
        )
        assert not (h.settings.runs_dir / "run-0001" / "train.log").exists()
    assert_no_errors(caplog, h.fake)


async def test_a_killed_trainer_is_reported_runs_never_overlap_and_shutdown_stops_the_trainer(tmp_path, caplog):
    async with harness(tmp_path, retrain_args=TINY, **data_dirs(tmp_path, SERVED_TINTS)) as h:
        user, admin = h.fake.private_chat(1004), h.fake.private_chat(ADMIN_ID)
        # Two at once (updates are handled concurrently), and one more while the trainer runs.
        admin.send_text("/retrain")
        admin.send_text("/retrain")
        replies = sorted([(await admin.next_message())["text"] for _ in range(2)])
        assert replies[0].startswith("A retraining run is already in progress: run #1 ")
        assert replies[1].startswith("Retraining run #1 started.")
        pid = await eventually(lambda: runs_of(h).running()[0].pid, what="the trainer to start")
        admin.send_text("/retrain")
        assert (await admin.next_message())["text"].startswith("A retraining run is already in progress: run #1 ")
        assert len(runs_of(h).running()) == 1
        os.kill(pid, signal.SIGKILL)
        report = (await admin.next_message(timeout=30))["text"]
        assert report.startswith("Retraining run #1 failed: the trainer was killed by signal SIGKILL.")
        user.send_photo(page_bytes(SERVED_TINTS["kaishu"], 80))
        assert "· model v0001" in (await user.next_message())["text"]
        assert sorted(p.name for p in (h.settings.runs_dir / "run-0001").iterdir()) == ["train.log"]

        admin.send_text("/retrain")
        assert (await admin.next_message())["text"].startswith("Retraining run #2 started.")
        second = await eventually(lambda: runs_of(h).running()[0].pid, what="the second trainer to start")
    # The bot stopped mid-run: its trainer is stopped with it and the run is on record as interrupted.
    assert not alive(second)
    with sqlite3.connect(h.settings.home / "bot.sqlite3") as db:
        assert db.execute("SELECT status, message FROM retrain_runs WHERE id = 2").fetchone() == (
            "interrupted",
            "interrupted: the bot stopped while training",
        )
    assert not (h.settings.runs_dir / "run-0002" / "train").exists()
    assert_no_errors(caplog, h.fake)


async def test_a_bot_killed_mid_run_is_cleaned_up_after_by_the_next_start(tmp_path, caplog):
    home = make_home(tmp_path)
    dirs = data_dirs(tmp_path, SERVED_TINTS)
    async with FakeTelegram() as fake:
        env = bot_env(
            fake,
            home,
            CALLIGRAPHY_BASE_DATA=str(dirs["base_data"]),
            CALLIGRAPHY_EVAL_DATA=str(dirs["eval_data"]),
            BOT_RETRAIN_ARGS=" ".join(TINY),
        )
        process = await start_bot(env, tmp_path)
        admin = fake.private_chat(ADMIN_ID)
        try:
            await fake.wait_until(lambda: fake.calls_of("getUpdates"), START_TIMEOUT, "the bot to poll")
            admin.send_text("/retrain")
            assert (await admin.next_message(timeout=10))["text"].startswith("Retraining run #1 started.")
            with sqlite3.connect(home / "bot.sqlite3") as db:
                trainer = await eventually(
                    lambda: db.execute("SELECT pid FROM retrain_runs WHERE status = 'running'").fetchone()[0],
                    what="the trainer to start",
                )
            # Telegram forgets an update once the bot asks for the next ones: /retrain is not delivered twice.
            await fake.wait_until(lambda: fake.pending_updates == 0, what="the update to be confirmed")
        finally:
            process.kill()
            await process.wait()
        assert alive(trainer), "the trainer outlives a killed bot"

        async with running_bot(settings_for(fake, home, retrain_args=TINY, **dirs)) as app:
            told = (await admin.next_message())["text"]
            assert told == (
                "Retraining run #1: interrupted by a restart of the bot while training. Serving v0001. "
                "/retrain starts a new run."
            )
            assert not alive(trainer)
            assert sorted(p.name for p in (home / "retrain" / "run-0001").iterdir()) == ["train.log"]
            store = ModelStore(home / "models")
            assert store.current() == "v0001" and [v.name for v in store.list()] == ["v0001"]
            user = fake.private_chat(1005)
            user.send_photo(page_bytes(SERVED_TINTS["kaishu"], 90))
            assert "· model v0001" in (await user.next_message())["text"]
            admin.send_text("/retrain status")
            assert (await admin.next_message())["text"].startswith("last run #1 interrupted at ")
            assert app.bot_data["services"].retrainer.status().endswith("while training")
    assert_no_errors(caplog, fake)


async def test_a_run_promoted_just_before_a_crash_is_recorded_as_promoted(tmp_path, caplog):
    home = make_home(tmp_path)
    store = ModelStore(home / "models")
    async with FakeTelegram() as fake:
        settings = settings_for(fake, home, **data_dirs(tmp_path, SERVED_TINTS))
        # What a bot killed between the store's promotion and its report leaves behind.
        runs = RunLog(Database(settings.db_url).engine, settings.runs_dir)
        run = runs.begin("admin", ADMIN_ID)
        version = store.add(make_model_dir(tmp_path / "candidate", gain=3.0))
        runs.update(run.id, stage="promoting", candidate_version=version)
        store.promote(version)
        (run.run_dir / "candidate").mkdir(parents=True)
        admin = fake.private_chat(ADMIN_ID)
        async with running_bot(settings):
            told = (await admin.next_message())["text"]
            assert told.startswith("Retraining run #1: v0002 promoted; the bot restarted before reporting it.")
            assert "Serving v0002." in told
            assert runs.last().status == "promoted" and not (run.run_dir / "candidate").exists()
    assert_no_errors(caplog, fake)


async def test_a_run_can_continue_from_the_served_model(tmp_path, caplog):
    """BOT_RETRAIN_FROM=served: the trainer starts from the served version's weights (a real Lite0 model here)
    with one stage at its input size, instead of from ImageNet's with the full recipe."""
    from trainer.pipeline import run

    dirs = data_dirs(tmp_path, NEW_TINTS)
    trained = tmp_path / "trained"
    run(tiny_config(dirs["base_data"], trained))
    home = tmp_path / "home"
    store = ModelStore(home / "models")
    store.promote(store.add(trained))
    one_epoch = ("--epochs-frozen", "1", "--epochs-unfrozen", "0", "--bs", "8")
    async with FakeTelegram() as fake:
        settings = settings_for(fake, home, retrain_args=one_epoch, retrain_from="served", **dirs)
        async with running_bot(settings):
            admin = fake.private_chat(ADMIN_ID)
            admin.send_text("/retrain")
            await admin.next_message()
            report = (await admin.next_message(timeout=TRAIN_TIMEOUT))["text"]
            assert report.startswith("Retraining run #1 (requested by 42): v0002 is"), report
            assert "trained from the served model v0001, continued." in report
            await admin.next_message()  # the confusion matrices
    served = store.path("v0001")
    assert f"continuing from the served model {served}" in (store.path("v0002") / "train.log").read_text()
    candidate = json.loads((store.path("v0002") / "model.json").read_text())
    assert candidate["training"]["init_from"] == str(served)
    assert candidate["input_size"] == 32 and candidate["training"]["members"] == 1
    assert_no_errors(caplog, fake)
