"""The bot's small parts on their own: settings, callback data, style names, limits, storage, redaction."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from bot_harness import GREY, RED, image_bytes

from bot.config import Settings
from bot.db import ADMIN, USER, Database, NewPrediction, Stats
from bot.image_store import ImageStore
from bot.ratelimit import UserRateLimiter
from bot.redact import MASK, RedactToken
from bot.replies import (
    Callback,
    band,
    bar,
    callback_data,
    parse_callback,
    resolve_style,
    status_text,
    style_name,
)
from calligraphy.errors import UsageError

TOKEN = "123:secret-token"
CLASSES = ["kaishu", "lishu", "xiaozhuan"]


def test_settings_defaults_and_parsing(tmp_path):
    settings = Settings.from_env(
        {"TELEGRAM_TOKEN": TOKEN, "BOT_ADMIN_IDS": " 7, 8 ,", "CALLIGRAPHY_HOME": str(tmp_path)}
    )
    assert settings.api_base == "https://api.telegram.org/bot"
    assert settings.file_api_base == "https://api.telegram.org/file/bot"
    assert settings.admin_ids == {7, 8}
    assert settings.low_confidence == 0.6 and settings.photos_per_minute == 20
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'bot.sqlite3'}"
    assert settings.images_dir == tmp_path / "images" and settings.webhook_url is None
    assert Settings.from_env({"TELEGRAM_TOKEN": TOKEN}).admin_ids == frozenset()
    assert TOKEN not in repr(settings) and "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TELEGRAM_TOKEN": " "}, "TELEGRAM_TOKEN is not set"),
        ({"TELEGRAM_TOKEN": "not a token"}, "TELEGRAM_TOKEN is malformed"),
        ({"BOT_ADMIN_IDS": "1,bob"}, "BOT_ADMIN_IDS"),
        ({"BOT_LOW_CONFIDENCE": "high"}, "BOT_LOW_CONFIDENCE must be a number"),
        ({"BOT_LOW_CONFIDENCE": "1.5"}, "BOT_LOW_CONFIDENCE must be between 0 and 1"),
        ({"BOT_PHOTOS_PER_MINUTE": "0"}, "BOT_PHOTOS_PER_MINUTE must be greater than 0"),
        ({"BOT_WEBHOOK_URL": "example.org/hook"}, "BOT_WEBHOOK_URL must be an http(s) URL"),
        ({"BOT_WEBHOOK_PORT": "70000"}, "BOT_WEBHOOK_PORT must be a TCP port"),
        ({"BOT_WEBHOOK_SECRET": "has spaces"}, "BOT_WEBHOOK_SECRET"),
        ({"TELEGRAM_FILE_API_BASE": "ftp://x"}, "TELEGRAM_FILE_API_BASE must be an http(s) URL"),
    ],
)
def test_bad_settings_name_the_variable(env, names):
    with pytest.raises(UsageError, match=re.escape(names)):
        Settings.from_env({"TELEGRAM_TOKEN": TOKEN} | env)


def test_dotenv_is_read_but_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"TELEGRAM_TOKEN={TOKEN}\nBOT_ADMIN_IDS=5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    monkeypatch.setenv("BOT_ADMIN_IDS", "6")
    settings = Settings.from_env()
    assert settings.token == TOKEN and settings.admin_ids == {6}


def test_callback_data_round_trip_and_strict_parsing():
    assert parse_callback(callback_data("fb", 12, 2)) == Callback("fb", 12, 2)
    assert parse_callback("rl:3:skip") == Callback("rl", 3, None)
    longest = callback_data("rl", 10**18 - 1, 99)
    assert len(longest.encode()) <= 64 and parse_callback(longest) == Callback("rl", 10**18 - 1, 99)
    for forged in ("fb:1:skip", "fb:0:1", "fb:-1:0", "fb:1:01", "fb:1:100", "xx:1:1", "fb:1", "fb:1:1 ", None, ""):
        assert parse_callback(forged) is None, forged
    assert parse_callback("fb:" + "9" * 19 + ":0") is None


def test_style_names_and_aliases():
    assert style_name("lishu") == "隶书 lishu (clerical)"
    assert style_name("caoshu") == "caoshu"
    for said, meant in [
        ("隶书", "lishu"),
        ("Clerical script", "lishu"),
        ("small seal", "xiaozhuan"),
        ("KAISHU", "kaishu"),
    ]:
        assert resolve_style(said, CLASSES) == meant
    assert resolve_style("cursive", CLASSES) is None
    assert resolve_style("caoshu", [*CLASSES, "caoshu"]) == "caoshu"


def test_confidence_bands_and_bars():
    assert [band(p, 0.6) for p in (0.95, 0.85, 0.7, 0.59)] == ["sure", "sure", "likely", "unsure"]
    assert band(0.88, 0.9) == "unsure" and band(0.92, 0.9) == "sure"
    assert bar(0.0) == "░" * 10 and bar(1.0) == "█" * 10 and bar(0.34) == "███" + "░" * 7


def test_rate_limiter_window():
    now = [0.0]
    limiter = UserRateLimiter(2, period=60, clock=lambda: now[0])
    assert limiter.allow(1) and limiter.allow(1) and not limiter.allow(1)
    assert limiter.allow(2)
    now[0] = 59.9
    assert not limiter.allow(1)
    now[0] = 60.0
    assert limiter.allow(1)


def test_image_store_is_content_addressed(tmp_path):
    store = ImageStore(tmp_path / "images")
    red, grey = image_bytes(RED), image_bytes(GREY, fmt="PNG")
    first, again, other = store.save(red), store.save(red), store.save(grey)
    assert first == again and first.endswith(".jpg") and other.endswith(".png")
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted([first, other])
    assert store.path(first).read_bytes() == red
    with pytest.raises(ValueError):
        store.path("../bot.sqlite3")


def new_prediction(low: bool, image: str | None = None) -> NewPrediction:
    probs = {"kaishu": 0.2, "lishu": 0.5, "xiaozhuan": 0.3}
    return NewPrediction(1, 1, "file", "unique", "v0001", probs, low, image)


def test_database_labels_pending_and_stats(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    confident = db.add_prediction(new_prediction(False))
    pending = db.add_prediction(new_prediction(True, "a.jpg"))
    skipped = db.add_prediction(new_prediction(True, "b.jpg"))
    assert confident.label == "lishu" and confident.confidence == 0.5 and confident.classes == CLASSES
    assert db.next_pending().id == pending.id
    db.skip(skipped.id)
    db.set_reply_message(confident.id, 77)
    assert db.find_by_reply(1, 77).id == confident.id and db.find_by_reply(2, 77) is None
    db.set_label(confident.id, "lishu", 1, USER)
    db.set_label(pending.id, "kaishu", 42, ADMIN)
    assert db.next_pending() is None
    stats = db.stats()
    assert (stats.predictions_today, stats.pending_relabel) == (3, 0)
    assert (stats.labeled_by_users, stats.confirmed_by_users, stats.labeled_by_admins) == (1, 1, 1)
    assert db.stats(datetime.now(UTC) + timedelta(days=1)).predictions_today == 0
    db.close()
    reopened = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    assert reopened.get(pending.id).label_given == "kaishu"
    reopened.close()


def test_token_is_redacted_from_messages_and_tracebacks(caplog):
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactToken(TOKEN))
    logger.warning("Set Bot API URL: http://x/bot%s", TOKEN)
    try:
        raise RuntimeError(f"failed: http://x/bot{TOKEN}/getMe")
    except RuntimeError:
        logger.exception("request failed")
    assert TOKEN not in caplog.text and caplog.text.count(MASK) == 2


def test_status_reports_the_accuracy_users_get():
    stats = Stats(0, 0, 0, 0, 0, 0)
    metrics = {"accuracy": 0.865, "runtime_accuracy": 0.919, "split": "grouped"}
    assert "accuracy 91.9% (grouped split)" in status_text("v2", metrics, stats, timedelta(0), None)
    older = {"accuracy": 0.824, "split": "grouped"}
    assert "accuracy 82.4% (grouped split)" in status_text("v1", older, stats, timedelta(0), None)
