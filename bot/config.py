"""The bot's settings, read once from the environment (and `.env`) so a bad value stops start-up early."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from calligraphy.errors import UsageError

DEFAULT_API_BASE = "https://api.telegram.org/bot"
DEFAULT_FILE_API_BASE = "https://api.telegram.org/file/bot"
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
Num = TypeVar("Num", int, float)
DEFAULT_RETRAIN_MIN_NEW = 20
# The job sets these itself: the exported training set and the candidate's directory.
RESERVED_TRAIN_OPTIONS = ("--data", "--out")
# Where a retraining run starts: the full recipe from ImageNet weights, or the served model, continued.
RETRAIN_FROM = ("scratch", "served")


@dataclass(frozen=True)
class Settings:
    token: str
    api_base: str = DEFAULT_API_BASE
    file_api_base: str = DEFAULT_FILE_API_BASE
    admin_ids: frozenset[int] = frozenset()
    home: Path = Path("var")
    db_url: str = ""
    low_confidence: float = 0.6
    photos_per_minute: int = 20
    reload_seconds: float = 30.0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_port: int = 8443
    webhook_listen: str = "0.0.0.0"
    base_data: Path | None = None
    eval_data: Path | None = None
    retrain_args: tuple[str, ...] = ()
    retrain_from: str = "scratch"
    retrain_cron: str | None = None
    retrain_min_new: int = DEFAULT_RETRAIN_MIN_NEW
    retrain_margin: float = 0.0

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks; the token must not.
        return f"Settings(api_base={self.api_base!r}, home={str(self.home)!r}, admins={len(self.admin_ids)})"

    @property
    def images_dir(self) -> Path:
        return self.home / "images"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def runs_dir(self) -> Path:
        """Retraining runs: each one's training log, and its working folders while it runs."""
        return self.home / "retrain"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        """Read and check every setting; a missing or malformed one raises UsageError naming it."""
        if env is None:
            if dotenv:
                from dotenv import find_dotenv, load_dotenv

                # The .env of the directory the bot is started in; real environment variables win.
                load_dotenv(find_dotenv(usecwd=True), override=False)
            env = os.environ
        token = env.get("TELEGRAM_TOKEN", "").strip()
        if not token:
            raise UsageError("TELEGRAM_TOKEN is not set: put the token from @BotFather in the environment")
        if not _TOKEN.match(token):
            raise UsageError("TELEGRAM_TOKEN is malformed: expected digits, a colon, then letters")
        home = Path(env.get("CALLIGRAPHY_HOME", "").strip() or "var")
        webhook_url = env.get("BOT_WEBHOOK_URL", "").strip() or None
        if webhook_url and urlparse(webhook_url).scheme not in ("http", "https"):
            raise UsageError(f"BOT_WEBHOOK_URL must be an http(s) URL, got {webhook_url!r}")
        secret = env.get("BOT_WEBHOOK_SECRET", "").strip() or None
        if secret and not _SECRET.match(secret):
            raise UsageError("BOT_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        margin = _number(env, "BOT_RETRAIN_MARGIN", 0.0, float)
        if not 0.0 <= margin < 1.0:
            raise UsageError(f"BOT_RETRAIN_MARGIN must be at least 0 and below 1, got {margin}")
        base_data = _directory(env, "CALLIGRAPHY_BASE_DATA")
        cron = _cron(env)
        if cron and base_data is None:
            raise UsageError("BOT_RETRAIN_CRON needs CALLIGRAPHY_BASE_DATA, the dataset retraining starts from")
        low = _number(env, "BOT_LOW_CONFIDENCE", 0.6, float)
        if not 0.0 <= low <= 1.0:
            raise UsageError(f"BOT_LOW_CONFIDENCE must be between 0 and 1, got {low}")
        return cls(
            token=token,
            api_base=_url(env, "TELEGRAM_API_BASE", DEFAULT_API_BASE),
            file_api_base=_url(env, "TELEGRAM_FILE_API_BASE", DEFAULT_FILE_API_BASE),
            admin_ids=_admin_ids(env.get("BOT_ADMIN_IDS", "")),
            home=home,
            db_url=env.get("CALLIGRAPHY_DB_URL", "").strip() or f"sqlite:///{home.resolve() / 'bot.sqlite3'}",
            low_confidence=low,
            photos_per_minute=_positive(env, "BOT_PHOTOS_PER_MINUTE", 20, int),
            reload_seconds=_positive(env, "BOT_RELOAD_SECONDS", 30.0, float),
            webhook_url=webhook_url,
            webhook_secret=secret,
            webhook_port=_port(env),
            webhook_listen=env.get("BOT_WEBHOOK_LISTEN", "").strip() or "0.0.0.0",
            base_data=base_data,
            eval_data=_directory(env, "CALLIGRAPHY_EVAL_DATA"),
            retrain_args=_train_args(env),
            retrain_from=_retrain_from(env),
            retrain_cron=cron,
            retrain_min_new=_positive(env, "BOT_RETRAIN_MIN_NEW", DEFAULT_RETRAIN_MIN_NEW, int),
            retrain_margin=margin,
        )


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if urlparse(value).scheme not in ("http", "https"):
        raise UsageError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _admin_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise UsageError(f"BOT_ADMIN_IDS must be comma-separated user ids, got {part!r}") from None
    return frozenset(ids)


def _number(env: Mapping[str, str], name: str, default: Num, kind: type[Num]) -> Num:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: Num, kind: type[Num]) -> Num:
    value = _number(env, name, default, kind)
    if value <= 0:
        raise UsageError(f"{name} must be greater than 0, got {value}")
    return value


def _port(env: Mapping[str, str]) -> int:
    port = _number(env, "BOT_WEBHOOK_PORT", 8443, int)
    if not 0 < port < 65536:
        raise UsageError(f"BOT_WEBHOOK_PORT must be a TCP port (1-65535), got {port}")
    return port


def _directory(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir():
        raise UsageError(f"{name} must be a directory with a folder per class, got {raw!r}")
    return path


def _train_args(env: Mapping[str, str]) -> tuple[str, ...]:
    """Options for `calligraphy train`; empty: its defaults, the production recipe."""
    raw = env.get("BOT_RETRAIN_ARGS", "")
    try:
        args = tuple(shlex.split(raw))
    except ValueError as exc:
        raise UsageError(f"BOT_RETRAIN_ARGS cannot be split into arguments: {exc}") from None
    for arg in args:
        option = arg.split("=", 1)[0]
        if option in RESERVED_TRAIN_OPTIONS:
            raise UsageError(f"BOT_RETRAIN_ARGS must not set {option}: the retraining job sets it")
        if option == "--init-from":
            raise UsageError(
                "BOT_RETRAIN_ARGS must not set --init-from: BOT_RETRAIN_FROM=served starts from the served model"
            )
    return args


def _retrain_from(env: Mapping[str, str]) -> str:
    raw = env.get("BOT_RETRAIN_FROM", "").strip().lower() or RETRAIN_FROM[0]
    if raw not in RETRAIN_FROM:
        raise UsageError(f"BOT_RETRAIN_FROM must be one of {', '.join(RETRAIN_FROM)}, got {raw!r}")
    return raw


def _cron(env: Mapping[str, str]) -> str | None:
    """A five-field crontab expression (minute hour day month weekday, in UTC), checked by APScheduler."""
    raw = " ".join(env.get("BOT_RETRAIN_CRON", "").split())
    if not raw:
        return None
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(raw)
    except ValueError as exc:
        raise UsageError(
            f"BOT_RETRAIN_CRON must be a crontab expression like '0 3 * * 1', got {raw!r}: {exc}"
        ) from None
    return raw
