"""Everything the handlers share (database, image store, classifier, worker threads), built once at start-up.

Blocking work (ONNX inference, database transactions, file writes) runs on worker threads, so the event loop
keeps answering other users while a burst of photos is being classified.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from telegram.ext import ContextTypes

from bot.config import Settings
from bot.db import Database, NewPrediction, PredictionRecord
from bot.image_store import ImageStore
from bot.ratelimit import UserRateLimiter
from calligraphy.errors import UsageError
from model_store.metadata import ModelError
from model_store.runtime import LiveClassifier, Prediction
from model_store.store import ModelStore, StoreError

if TYPE_CHECKING:
    from bot.retrain import Retrainer

log = logging.getLogger(__name__)

SERVICES_KEY = "services"
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    images: ImageStore
    store: ModelStore
    classifier: LiveClassifier
    limiter: UserRateLimiter
    inference: ThreadPoolExecutor
    storage: ThreadPoolExecutor
    retrainer: Retrainer | None = None
    started_at: float = field(default_factory=time.monotonic)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Create the home directory, open the database and load the current model."""
        settings.home.mkdir(parents=True, exist_ok=True)
        store = ModelStore(settings.models_dir)
        try:
            classifier = LiveClassifier(store, threads=1)
        except StoreError as exc:
            raise UsageError(str(exc)) from exc
        except (ModelError, OSError) as exc:
            raise UsageError(f"cannot load the model to serve: {exc}") from exc
        return cls(
            settings=settings,
            db=Database(settings.db_url),
            images=ImageStore(settings.images_dir),
            store=store,
            classifier=classifier,
            limiter=UserRateLimiter(settings.photos_per_minute),
            # One single-threaded ONNX session per core runs faster here than one session on all cores.
            inference=ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="inference"),
            # One writer thread: SQLite transactions never contend, and their order is the arrival order.
            storage=ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage"),
        )

    def close(self) -> None:
        self.inference.shutdown(wait=True)
        self.storage.shutdown(wait=True)
        self.db.close()

    async def predict(self, data: bytes) -> Prediction:
        return await self._on(self.inference, self.classifier.predict, data)

    async def stored(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a database or file operation on the storage thread."""
        return await self._on(self.storage, fn, *args)

    async def _on(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def save_prediction(self, new: NewPrediction, image: bytes | None) -> PredictionRecord:
        """Keep the image first, so a stored row never points at a missing file."""
        if image is not None:
            new = replace(new, image=self.images.save(image))
        return self.db.add_prediction(new)

    def keep_image(self, prediction_id: int, image: bytes) -> None:
        self.db.set_image(prediction_id, self.images.save(image))

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data[SERVICES_KEY]
