"""The bot, in this process, against a FakeTelegram server: a real model store, SQLite and ONNX model."""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram
from model_factory import make_model_dir
from PIL import Image
from telegram.ext import Application

from bot.app import ALLOWED_UPDATES, build_application
from bot.config import Settings
from bot.services import Services
from model_store.store import ModelStore

ADMIN_ID = 42
RED, GREEN, BLUE, GREY = (230, 20, 20), (20, 230, 20), (20, 20, 230), (128, 128, 128)
# Channel means that land between the low-confidence threshold (0.6) and "sure" (0.85).
REDDISH = (200, 90, 60)


def image_bytes(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def make_home(root: Path, model_size: int = 32) -> Path:
    """A CALLIGRAPHY_HOME whose store serves one promoted test model, v0001."""
    home = root / "home"
    store = ModelStore(home / "models")
    store.promote(store.add(make_model_dir(root / "trained", size=model_size)))
    return home


def settings_for(fake: FakeTelegram, home: Path, **overrides: object) -> Settings:
    settings = Settings(
        token=fake.token,
        api_base=fake.api_base,
        file_api_base=fake.file_api_base,
        admin_ids=frozenset({ADMIN_ID}),
        home=home,
        db_url=f"sqlite:///{home / 'bot.sqlite3'}",
        reload_seconds=3600,
    )
    return dataclasses.replace(settings, **overrides)


@asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[Application]:
    """Start the Application as `run_polling` does (post_init included), in the test's event loop."""
    app = build_application(Services.open(settings))
    await app.initialize()
    await app.post_init(app)
    await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=ALLOWED_UPDATES)
    await app.start()
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await app.post_shutdown(app)


@dataclasses.dataclass
class Harness:
    fake: FakeTelegram
    app: Application
    settings: Settings

    @property
    def services(self) -> Services:
        return self.app.bot_data["services"]


@asynccontextmanager
async def harness(tmp_path: Path, model_size: int = 32, **overrides: object) -> AsyncIterator[Harness]:
    async with FakeTelegram() as fake:
        settings = settings_for(fake, make_home(tmp_path, model_size), **overrides)
        async with running_bot(settings) as app:
            yield Harness(fake, app, settings)


def assert_no_errors(caplog: pytest.LogCaptureFixture, fake: FakeTelegram, allowed: tuple[str, ...] = ()) -> None:
    """No handler raised (PTB routes those to the error handler, which logs them) and no request was refused."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    refused = [e for e in fake.unexpected_errors if not any(a in e[1] for a in allowed)]
    assert not refused, refused
