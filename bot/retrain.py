"""Retraining runs: export the labelled images, train a candidate in another process, gate it, promote it.

One run at a time, started by an admin's /retrain or by the cron schedule. The trainer is
`python -m calligraphy train` in a child process (torch and fastai never load in the bot), writing its log
to `$CALLIGRAPHY_HOME/retrain/run-NNNN/train.log`, which is also kept inside the candidate's version. Every
step is on record in the database (bot/runs.py): a run left 'running' by a killed bot is found at the next
start-up, its trainer stopped and its working folders removed, and the admins are told. Promotion is the
store's atomic pointer switch followed by a hot reload, so the bot never serves half a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from telegram import Bot
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.confusion_image import confusion_png
from bot.eval_set import EvalSet, EvalSetError, fixed_eval_set
from bot.gate import GateError, Verdict, judge
from bot.runs import FAILED, INTERRUPTED, PROMOTED, REJECTED, RunLog, RunRecord
from bot.services import Services
from bot.training_set import ExportSummary, export_training_set
from model_store.metadata import ModelError, read_metadata
from model_store.store import ModelStore, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
LOG_NAME = "train.log"
# Working folders of a run, removed when it ends; the log stays.
WORK_DIRS = ("train", "eval", "candidate")
# BOT_RETRAIN_FROM=served: one fine-tune stage of the served model, with its architecture and input size (25
# minutes for the seed data on one CPU core, against 5.3 hours for the full recipe on two). BOT_RETRAIN_ARGS come
# after and can change it.
CONTINUE_RECIPE = ("--members", "1", "--finetune-members", "0", "--epochs-unfrozen", "3")
LOG_TAIL_LINES = 6
LOG_LINE_CHARS = 200
ORPHAN_WAIT_S = 10.0


@dataclass(frozen=True)
class Start:
    """Where a run's trainer starts, for its command line and for the admins' report."""

    description: str
    options: tuple[str, ...]


class RunFailed(Exception):
    """A step of the run failed in a way the admins can act on; the message says what happened."""


# Failures that end a run with a message rather than a traceback in the log.
EXPECTED_FAILURES = (RunFailed, EvalSetError, GateError, StoreError, ModelError, OSError)


class Retrainer:
    """Starts, tracks, recovers and reports retraining runs for one bot."""

    def __init__(self, svc: Services, bot: Bot) -> None:
        self._svc = svc
        self._bot = bot
        self._runs = RunLog(svc.db.engine, svc.settings.runs_dir)
        self._task: asyncio.Task | None = None
        self._run: RunRecord | None = None
        self._last: RunRecord | None = None

    # -- what the handlers and the schedule call ----------------------------------------------------

    async def start(self, requested_by: int) -> str:
        """Start a run now (an admin's /retrain); return the reply."""
        return await self._launch("admin", requested_by)

    async def on_schedule(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The cron job: retrain only when enough new labels arrived since the last run that was judged."""
        since = await self._svc.stored(self._runs.last_judged_start)
        new = len(await self._svc.stored(self._svc.db.labels, since))
        needed = self._svc.settings.retrain_min_new
        if new < needed:
            log.info("scheduled retraining skipped: %d new labels, %d needed", new, needed)
            return
        log.info("scheduled retraining: %d new labels: %s", new, await self._launch("schedule", None))

    def status(self) -> str | None:
        """The run in progress, else the last run; None if there never was one."""
        run = self._run
        if run is not None:
            elapsed = _duration(datetime.now(UTC) - run.started_at)
            text = f"run #{run.id} {run.stage} for {elapsed}"
            latest = _log_tail(run.run_dir / LOG_NAME, 1) if run.stage == "training" else []
            return text + (f"; trainer: {latest[0]}" if latest else "")
        last = self._last
        if last is None:
            return None
        when = (last.finished_at or last.started_at).strftime("%Y-%m-%d %H:%M UTC")
        return f"last run #{last.id} {last.status} at {when}: {last.message}"

    async def recover(self) -> None:
        """At start-up: end the runs a previous bot process left running, and tell the admins."""
        for run in await self._svc.stored(self._runs.running):
            await asyncio.to_thread(_stop_orphan, run)
            current = self._svc.store.current()
            if run.candidate_version is not None and run.candidate_version == current:
                finished = await self._svc.stored(
                    self._runs.finish, run.id, PROMOTED, f"{current} promoted; the bot restarted before reporting it"
                )
            else:
                finished = await self._svc.stored(
                    self._runs.finish, run.id, INTERRUPTED, f"interrupted by a restart of the bot while {run.stage}"
                )
            log.warning("retraining run %d: %s", run.id, finished.message)
            await self._tell_admins(
                f"Retraining run #{run.id}: {finished.message}. Serving {self._svc.classifier.version}. "
                "/retrain starts a new run."
            )
        self._last = await self._svc.stored(self._runs.last)
        await asyncio.to_thread(_remove_leftovers, self._svc.settings.runs_dir)

    async def close(self) -> None:
        """At shutdown: stop a run in progress (its trainer too) and record it as interrupted."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- one run --------------------------------------------------------------------------------------

    async def _launch(self, trigger: str, requested_by: int | None) -> str:
        if importlib.util.find_spec("fastai") is None:
            return (
                "The trainer is not installed where the bot runs (no fastai): install the 'train' extra or run "
                "the bot from the trainer image; see docs/deploy.md."
            )
        running = self._task is not None and not self._task.done()
        run = None if running else await self._svc.stored(self._runs.begin, trigger, requested_by)
        if run is None:
            where = self.status() if self._run is not None else "started by another bot process"
            return f"A retraining run is already in progress: {where}. /retrain status shows progress."
        self._run = run
        self._task = asyncio.create_task(self._execute(run), name=f"retrain-{run.id}")
        log.info("retraining run %d started (%s %s)", run.id, trigger, requested_by or "")
        return (
            f"Retraining run #{run.id} started. I will message the admins when it ends; /retrain status shows progress."
        )

    async def _execute(self, run: RunRecord) -> None:
        started = time.monotonic()
        photo = None
        try:
            text, photo = await self._train_and_judge(run, started)
        except asyncio.CancelledError:
            self._last = await self._svc.stored(
                self._runs.finish, run.id, INTERRUPTED, f"interrupted: the bot stopped while {(self._run or run).stage}"
            )
            log.warning("retraining run %d interrupted: the bot is stopping", run.id)
            raise
        except Exception as exc:
            if isinstance(exc, EXPECTED_FAILURES):
                log.warning("retraining run %d failed: %s", run.id, exc)
            else:
                log.exception("retraining run %d failed", run.id)
            reason = str(exc) or type(exc).__name__
            self._last = await self._svc.stored(self._runs.finish, run.id, FAILED, reason.splitlines()[0])
            text = f"Retraining run #{run.id} failed: {reason}\nStill serving {self._svc.classifier.version}."
        finally:
            self._run = None
            await asyncio.to_thread(_remove_work_dirs, run.run_dir)
        await self._tell_admins(text, photo)

    async def _stage(self, run: RunRecord, stage: str, **fields: Any) -> None:
        self._run = await self._svc.stored(functools.partial(self._runs.update, run.id, stage=stage, **fields))

    async def _train_and_judge(self, run: RunRecord, started: float) -> tuple[str, bytes]:
        settings, store = self._svc.settings, self._svc.store
        work = run.run_dir
        await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
        await self._stage(run, "exporting")
        eval_set = await self._off_loop(fixed_eval_set, settings, store, self._svc.images, work / "eval")
        labels = await self._svc.stored(self._svc.db.labels)
        summary = await self._off_loop(
            export_training_set, settings.base_data, labels, self._svc.images, work / "train", set(eval_set.digests)
        )
        await self._stage(run, "training")
        start = await self._off_loop(self._start, store)
        await self._train(run, work, start.options)
        await self._stage(run, "evaluating")
        await asyncio.to_thread(shutil.copyfile, work / LOG_NAME, work / "candidate" / LOG_NAME)
        version = await self._off_loop(store.add, work / "candidate")
        await self._stage(run, "evaluating", candidate_version=version)
        verdict = await self._off_loop(judge, store, version, eval_set.root, settings.retrain_margin)
        accuracies = {
            "current_accuracy": verdict.current.accuracy,
            "candidate_accuracy": verdict.candidate.accuracy,
        }
        if verdict.promote:
            await self._stage(run, "promoting", **accuracies)
            await self._off_loop(store.promote, version)
            await self._svc.stored(self._svc.classifier.reload)
            outcome = f"{version} promoted ({verdict.candidate.accuracy:.1%} vs {verdict.current.accuracy:.1%})"
        else:
            outcome = (
                f"{version} kept, not promoted ({verdict.candidate.accuracy:.1%} vs "
                f"{verdict.current.accuracy:.1%} for {verdict.current_version})"
            )
        self._last = await self._svc.stored(
            functools.partial(
                self._runs.finish, run.id, PROMOTED if verdict.promote else REJECTED, outcome, **accuracies
            )
        )
        log.info("retraining run %d: %s", run.id, outcome)
        photo = await self._off_loop(confusion_png, verdict)
        return self._report(run, verdict, eval_set, summary, start, time.monotonic() - started), photo

    def _start(self, store: ModelStore) -> Start:
        """What the trainer starts from: ImageNet weights (its own recipe), or the served model's weights."""
        if self._svc.settings.retrain_from != "served":
            return Start("ImageNet weights", ())
        model_dir = store.current_path()
        meta = read_metadata(model_dir)
        name = store.current() or "the packaged default model"
        arch = ("--arch", meta["arch"]) if isinstance(meta.get("arch"), str) else ()
        network = (*arch, "--sizes", str(meta["input_size"]))
        options = ("--init-from", str(model_dir), *CONTINUE_RECIPE, *network)
        return Start(f"the served model {name}, continued", options)

    async def _train(self, run: RunRecord, work: Path, start_options: tuple[str, ...]) -> None:
        """`calligraphy train` in its own session (a Ctrl-C meant for the bot is not the trainer's)."""
        command = [
            sys.executable,
            "-m",
            "calligraphy",
            "train",
            *start_options,
            *self._svc.settings.retrain_args,
            # Last, so they win over anything in BOT_RETRAIN_ARGS.
            "--data",
            str(work / "train"),
            "--out",
            str(work / "candidate"),
        ]
        with (work / LOG_NAME).open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        log.info("retraining run %d: trainer pid %d: %s", run.id, process.pid, " ".join(command))
        try:
            await self._stage(run, "training", pid=process.pid)
            code = await process.wait()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        if code != 0:
            tail = "\n".join(_log_tail(work / LOG_NAME, LOG_TAIL_LINES)) or "(empty)"
            raise RunFailed(f"the trainer {_exit_reason(code)}. The end of its log:\n{tail}")

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking work on a thread; a run cancelled meanwhile lets the step finish before it cleans up."""
        future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def _report(
        self,
        run: RunRecord,
        verdict: Verdict,
        eval_set: EvalSet,
        summary: ExportSummary,
        start: Start,
        seconds: float,
    ) -> str:
        who = f"requested by {run.requested_by}" if run.requested_by is not None else "on schedule"
        if verdict.promote:
            outcome = f"{verdict.candidate_version} is promoted and now served. /rollback undoes it."
        else:
            outcome = (
                f"{verdict.candidate_version} is kept but not promoted: it is worse than "
                f"{verdict.current_version} by more than the margin. Still serving {self._svc.classifier.version}."
            )
        return "\n".join(
            [
                f"Retraining run #{run.id} ({who}): {outcome}",
                f"Evaluation set: {eval_set.n} images ({eval_set.source}).",
                *verdict.lines(),
                f"Training set: {summary.line()}; trained from {start.description}.",
                f"Took {_duration(timedelta(seconds=seconds))}; the trainer's log is {LOG_NAME} in "
                f"{verdict.candidate_version}.",
            ]
        )

    async def _tell_admins(self, text: str, photo: bytes | None = None) -> None:
        for admin in sorted(self._svc.settings.admin_ids):
            try:
                await self._bot.send_message(admin, text)
                if photo is not None:
                    await self._bot.send_photo(admin, photo, caption="Confusion matrices on the evaluation set")
            except TelegramError as exc:
                log.warning("could not tell admin %s about retraining: %s", admin, exc)


def _duration(delta: timedelta) -> str:
    return str(timedelta(seconds=round(delta.total_seconds())))


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _log_tail(path: Path, lines: int) -> list[str]:
    """The last non-empty lines of a log (progress bars redraw with carriage returns: each is a line)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    found = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    return [line[:LOG_LINE_CHARS] for line in found[-lines:]]


def _remove_work_dirs(run_dir: Path) -> None:
    for name in WORK_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def _remove_leftovers(runs_dir: Path) -> None:
    """Working folders of runs that ended without cleaning up (a step still running when the bot was killed)."""
    if runs_dir.is_dir():
        for run_dir in runs_dir.iterdir():
            if run_dir.is_dir():
                _remove_work_dirs(run_dir)


def _stop_orphan(run: RunRecord) -> None:
    """Kill the trainer a killed bot left behind: only a live process whose command line names this run."""
    if run.pid is None:
        return
    cmdline = Path(f"/proc/{run.pid}/cmdline")
    try:
        if str(run.run_dir) not in cmdline.read_bytes().decode(errors="replace"):
            return
        os.kill(run.pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        return
    log.warning("retraining run %d: killed its orphaned trainer (pid %d)", run.id, run.pid)
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while cmdline.exists() and _state(run.pid) not in ("Z", "X") and time.monotonic() < deadline:
        time.sleep(0.05)


def _state(pid: int) -> str:
    """The process state letter from /proc (Z: a zombie, dead but not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"
