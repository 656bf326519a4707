"""Retraining runs on record, in the bot's database, so a run cut short by a crash or restart is found again.

A run is 'running' until it ends as 'promoted', 'rejected' (trained but worse than the model served),
'failed' (the trainer or a step after it failed) or 'interrupted' (the bot stopped during the run).
Each method is one transaction and blocks; the bot calls them from its storage thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Integer, String, Text, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from bot.db import _now, _utc

RUNNING = "running"
PROMOTED = "promoted"
REJECTED = "rejected"
FAILED = "failed"
INTERRUPTED = "interrupted"
# Runs that trained and were judged: the ones "new labels since the last run" counts from.
JUDGED = (PROMOTED, REJECTED)


class _Base(DeclarativeBase):
    pass


class _Run(_Base):
    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run_dir: Mapped[str] = mapped_column(String(1024), default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    candidate_version: Mapped[str | None] = mapped_column(String(64))
    current_accuracy: Mapped[float | None] = mapped_column(Float)
    candidate_accuracy: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class RunRecord:
    """A detached snapshot of one run."""

    id: int
    trigger: str
    requested_by: int | None
    status: str
    stage: str
    started_at: datetime
    finished_at: datetime | None
    run_dir: Path
    pid: int | None
    candidate_version: str | None
    current_accuracy: float | None
    candidate_accuracy: float | None
    message: str | None


class RunLog:
    """The `retrain_runs` table, on the engine of the bot's database."""

    def __init__(self, engine: Engine, runs_root: Path) -> None:
        _Base.metadata.create_all(engine)
        self._session = sessionmaker(engine, expire_on_commit=False)
        self.runs_root = runs_root

    def begin(self, trigger: str, requested_by: int | None) -> RunRecord | None:
        """Record a new running run, or return None while another one is running."""
        with self._session.begin() as session:
            if session.scalar(select(func.count(_Run.id)).where(_Run.status == RUNNING)):
                return None
            row = _Run(trigger=trigger, requested_by=requested_by, status=RUNNING, stage="starting", started_at=_now())
            session.add(row)
            session.flush()
            row.run_dir = str(self.runs_root / f"run-{row.id:04d}")
            return _record(row)

    def update(self, run_id: int, **fields: Any) -> RunRecord:
        with self._session.begin() as session:
            row = session.get_one(_Run, run_id)
            for name, value in fields.items():
                setattr(row, name, value)
            return _record(row)

    def finish(self, run_id: int, status: str, message: str, **fields: Any) -> RunRecord:
        return self.update(run_id, status=status, message=message, finished_at=_now(), pid=None, **fields)

    def running(self) -> list[RunRecord]:
        with self._session() as session:
            rows = session.scalars(select(_Run).where(_Run.status == RUNNING).order_by(_Run.id))
            return [_record(row) for row in rows]

    def last(self) -> RunRecord | None:
        with self._session() as session:
            row = session.scalars(select(_Run).order_by(_Run.id.desc()).limit(1)).first()
            return _record(row) if row else None

    def last_judged_start(self) -> datetime | None:
        """When the newest run that trained and was judged began: its export held the labels given before."""
        with self._session() as session:
            moment = session.scalar(select(func.max(_Run.started_at)).where(_Run.status.in_(JUDGED)))
            return _utc(moment) if moment else None


def _record(row: _Run) -> RunRecord:
    return RunRecord(
        id=row.id,
        trigger=row.trigger,
        requested_by=row.requested_by,
        status=row.status,
        stage=row.stage,
        started_at=_utc(row.started_at),
        finished_at=_utc(row.finished_at) if row.finished_at else None,
        run_dir=Path(row.run_dir),
        pid=row.pid,
        candidate_version=row.candidate_version,
        current_accuracy=row.current_accuracy,
        candidate_accuracy=row.candidate_accuracy,
        message=row.message,
    )
