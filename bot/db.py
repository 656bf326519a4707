"""Every prediction the bot makes and every label people give, in one table any SQLAlchemy database can hold.

Each public method is one transaction: it commits before it returns, so whatever the bot has acknowledged to
a user survives a crash. The methods block; the bot calls them from a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    String,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

log = logging.getLogger(__name__)

USER = "user"
ADMIN = "admin"


class _Base(DeclarativeBase):
    pass


class _Prediction(_Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_reply", "chat_id", "reply_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    reply_message_id: Mapped[int | None] = mapped_column(BigInteger)
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    probs: Mapped[dict[str, float]] = mapped_column(JSON)
    low_confidence: Mapped[bool] = mapped_column(Boolean, index=True)
    image: Mapped[str | None] = mapped_column(String(128))
    label_given: Mapped[str | None] = mapped_column(String(64))
    label_by: Mapped[int | None] = mapped_column(BigInteger)
    label_source: Mapped[str | None] = mapped_column(String(8))
    labeled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class NewPrediction:
    user_id: int
    chat_id: int
    file_id: str
    file_unique_id: str
    model_version: str
    probs: dict[str, float]
    low_confidence: bool
    image: str | None = None

    @property
    def label(self) -> str:
        return max(self.probs, key=self.probs.__getitem__)


@dataclass(frozen=True)
class PredictionRecord:
    """A detached snapshot of one row: safe to pass between threads."""

    id: int
    created_at: datetime
    user_id: int
    chat_id: int
    reply_message_id: int | None
    file_id: str
    file_unique_id: str
    model_version: str
    label: str
    confidence: float
    probs: dict[str, float]
    low_confidence: bool
    image: str | None
    label_given: str | None
    label_by: int | None
    label_source: str | None
    skipped: bool

    @property
    def classes(self) -> list[str]:
        return list(self.probs)


@dataclass(frozen=True)
class Label:
    """A label someone gave to a kept image: what retraining learns from."""

    image: str
    label: str
    source: str
    labeled_at: datetime


@dataclass(frozen=True)
class Stats:
    predictions_today: int
    predictions_total: int
    pending_relabel: int
    labeled_by_users: int
    confirmed_by_users: int
    labeled_by_admins: int


class Database:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, **_engine_options(url))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        log.info("database ready: %s", self.engine.url.render_as_string(hide_password=True))

    def close(self) -> None:
        self.engine.dispose()

    def add_prediction(self, new: NewPrediction) -> PredictionRecord:
        row = _Prediction(
            created_at=_now(),
            user_id=new.user_id,
            chat_id=new.chat_id,
            file_id=new.file_id,
            file_unique_id=new.file_unique_id,
            model_version=new.model_version,
            label=new.label,
            confidence=max(new.probs.values()),
            probs=new.probs,
            low_confidence=new.low_confidence,
            image=new.image,
        )
        with self._session.begin() as session:
            session.add(row)
            session.flush()
            return _record(row)

    def set_reply_message(self, prediction_id: int, message_id: int) -> None:
        with self._session.begin() as session:
            session.get_one(_Prediction, prediction_id).reply_message_id = message_id

    def set_image(self, prediction_id: int, image: str) -> None:
        with self._session.begin() as session:
            session.get_one(_Prediction, prediction_id).image = image

    def get(self, prediction_id: int) -> PredictionRecord | None:
        with self._session() as session:
            row = session.get(_Prediction, prediction_id)
            return _record(row) if row else None

    def find_by_reply(self, chat_id: int, message_id: int) -> PredictionRecord | None:
        """The prediction the bot answered with message `message_id` in `chat_id`."""
        with self._session() as session:
            row = session.scalars(
                select(_Prediction).where(_Prediction.chat_id == chat_id, _Prediction.reply_message_id == message_id)
            ).first()
            return _record(row) if row else None

    def set_label(self, prediction_id: int, label: str, by: int, source: str) -> PredictionRecord:
        with self._session.begin() as session:
            row = session.get_one(_Prediction, prediction_id)
            row.label_given, row.label_by, row.label_source, row.labeled_at = label, by, source, _now()
            return _record(row)

    def skip(self, prediction_id: int) -> None:
        with self._session.begin() as session:
            session.get_one(_Prediction, prediction_id).skipped = True

    def next_pending(self) -> PredictionRecord | None:
        """The oldest low-confidence prediction that has an image and nobody has labelled or skipped."""
        with self._session() as session:
            row = session.scalars(_pending().order_by(_Prediction.id).limit(1)).first()
            return _record(row) if row else None

    def labels(self, since: datetime | None = None) -> list[Label]:
        """Labels on predictions whose image was kept, oldest first; `since`: only those given after it."""
        P = _Prediction
        query = select(P.image, P.label_given, P.label_source, P.labeled_at).where(
            P.label_given.is_not(None), P.image.is_not(None)
        )
        if since is not None:
            query = query.where(P.labeled_at > since)
        with self._session() as session:
            rows = session.execute(query.order_by(P.labeled_at, P.id)).all()
            return [Label(image, label, source, _utc(at)) for image, label, source, at in rows]

    def stats(self, now: datetime | None = None) -> Stats:
        now = now or _now()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        P = _Prediction
        with self._session() as session:

            def count(*where: Any) -> int:
                return session.scalar(select(func.count(P.id)).where(*where)) or 0

            return Stats(
                predictions_today=count(P.created_at >= midnight),
                predictions_total=count(),
                pending_relabel=session.scalar(select(func.count()).select_from(_pending().subquery())) or 0,
                labeled_by_users=count(P.label_source == USER),
                confirmed_by_users=count(P.label_source == USER, P.label_given == P.label),
                labeled_by_admins=count(P.label_source == ADMIN),
            )


def _pending() -> Any:
    P = _Prediction
    return select(P).where(P.low_confidence, P.image.is_not(None), P.label_given.is_(None), ~P.skipped)


def _record(row: _Prediction) -> PredictionRecord:
    return PredictionRecord(
        id=row.id,
        created_at=_utc(row.created_at),
        user_id=row.user_id,
        chat_id=row.chat_id,
        reply_message_id=row.reply_message_id,
        file_id=row.file_id,
        file_unique_id=row.file_unique_id,
        model_version=row.model_version,
        label=row.label,
        confidence=row.confidence,
        probs=dict(row.probs),
        low_confidence=row.low_confidence,
        image=row.image,
        label_given=row.label_given,
        label_by=row.label_by,
        label_source=row.label_source,
        skipped=row.skipped,
    )


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Worker threads share the engine; SQLite waits for a busy writer instead of failing at once.
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()
