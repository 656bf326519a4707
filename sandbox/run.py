"""`calligraphy sandbox`: the local Bot API server with its chat page, and the unchanged bot as a child process.

The bot is started exactly as in production (`calligraphy bot`), pointed at this server by TELEGRAM_API_BASE
with a token made up for the run, so what people try in the page is what Telegram users get.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import sys
import webbrowser
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calligraphy.errors import UsageError
from model_store.metadata import MODEL_FILE, ModelError
from model_store.store import ModelStore, StoreError, sha256_of
from sandbox.telegram_api import TelegramServer
from sandbox.web import ADMIN, LOOPBACK_NAMES, ChatPage

log = logging.getLogger(__name__)

# The bot imports PTB and ONNX Runtime and loads the model first: slow on a busy 2-core machine.
BOT_START_SECONDS = 120.0
BOT_STOP_SECONDS = 20.0
KEPT_CALLS = 1000


@dataclass(frozen=True)
class SandboxConfig:
    """What `calligraphy sandbox` was asked for; its options hold the defaults."""

    host: str
    port: int
    home: Path
    model: Path | None = None
    open_browser: bool = True
    unsafe_listen: bool = False


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, unsafe_listen: bool) -> None:
    """Refuse to put a chat with admin rights on the network unless asked to in so many words."""
    if not is_loopback(host) and not unsafe_listen:
        raise UsageError(
            f"--host {host} is not a loopback address: anyone who can reach it could act as the bot's admin; "
            "add --unsafe-listen if you really mean it"
        )


def prepare_model(home: Path, model: Path | None) -> str:
    """Describe the model the bot will serve; `model` (a `calligraphy train` output) is promoted first."""
    store = ModelStore(home / "models")
    try:
        if model is not None:
            if not (model / MODEL_FILE).is_file():
                raise UsageError(f"--model {model}: not a model directory (no {MODEL_FILE}); give a trainer's --out")
            current = store.current()
            if current is None or sha256_of(store.path(current) / MODEL_FILE) != sha256_of(model / MODEL_FILE):
                store.promote(store.add(model))
        current = store.current()
        if current is not None:
            store.verify(current)
            return f"model {current} of {store.root}"
        return f"the packaged default model ({store.current_path()})"
    except StoreError as exc:
        if store.current() is None and model is None:
            raise UsageError(
                f"no model to serve: nothing promoted in {store.root} and no packaged default model. Train one "
                "(`calligraphy train --data DIR --out runs/v1`), then start the sandbox with --model runs/v1"
            ) from exc
        raise UsageError(str(exc)) from exc
    except ModelError as exc:
        raise UsageError(f"cannot serve the model: {exc}") from exc


def new_token() -> str:
    """A token in Telegram's format, new for each run, so nothing else on this machine can act as the bot."""
    return f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(27)}"


def bot_environment(server: TelegramServer, home: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The bot's settings: this server, the sandbox's own data and admin. Retraining settings pass through.

    Webhook settings are set empty rather than removed, so a `.env` cannot fill them in again.
    """
    env = {k: v for k, v in base.items() if not k.startswith(("TELEGRAM_", "BOT_WEBHOOK_"))}
    env.update(
        TELEGRAM_TOKEN=server.token,
        TELEGRAM_API_BASE=server.api_base,
        TELEGRAM_FILE_API_BASE=server.file_api_base,
        BOT_ADMIN_IDS=str(ADMIN.user_id),
        CALLIGRAPHY_HOME=str(home),
        CALLIGRAPHY_DB_URL=f"sqlite:///{home.resolve() / 'bot.sqlite3'}",
        BOT_WEBHOOK_URL="",
        BOT_WEBHOOK_SECRET="",
        NO_PROXY="127.0.0.1,localhost,::1",
    )
    return env


def run(config: SandboxConfig) -> int:
    """Serve the page and the bot until Ctrl-C or SIGTERM; the exit status is the command's."""
    check_host(config.host, config.unsafe_listen)
    serving = prepare_model(config.home, config.model)
    return asyncio.run(serve(config, serving))


async def serve(config: SandboxConfig, serving: str) -> int:
    server = TelegramServer(
        new_token(), host=config.host, port=config.port, username="calligraphy_sandbox_bot", keep_calls=KEPT_CALLS
    )
    page = ChatPage(server, allowed_hosts=None if config.unsafe_listen else LOOPBACK_NAMES)
    app = server.web_app()
    page.add_routes(app)
    try:
        await server.start(app)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}; "
            "choose another port with --port (0 picks a free one)"
        ) from None
    try:
        return await _with_bot(server, config, serving)
    finally:
        await server.stop()


async def _with_bot(server: TelegramServer, config: SandboxConfig, serving: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Its own session: Ctrl-C reaches the sandbox only, which then stops the bot once, in order.
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calligraphy",
        "bot",
        env=bot_environment(server, config.home, os.environ),
        start_new_session=True,
    )
    try:
        polling = server.wait_until(
            lambda: server.calls_of("getUpdates"), timeout=BOT_START_SECONDS, what="the bot to start polling"
        )
        try:
            outcome = await _first(started=polling, exited=bot.wait(), stopped=stop.wait())
        except TimeoutError:
            raise UsageError(f"the bot did not start within {BOT_START_SECONDS:.0f} s; its log is above") from None
        if outcome == "exited":
            raise UsageError(f"the bot stopped while starting (exit status {bot.returncode}); its message is above")
        if outcome == "stopped":
            return 0
        url = f"{server.base_url}/"
        print(f"Calligraphy sandbox: chat with the bot at {url}", flush=True)
        print(f"  serving {serving}; data in {config.home}; Ctrl-C stops it", flush=True)
        if config.open_browser and _has_display():
            webbrowser.open(url)
        if await _first(exited=bot.wait(), stopped=stop.wait()) == "exited":
            log.error("the bot stopped (exit status %s); see its log above", bot.returncode)
            return bot.returncode or 1
        return 0
    finally:
        await _stop_bot(bot)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _first(**awaitables: Awaitable[Any]) -> str:
    """The name of the first awaitable to finish (its exception, if any, raised); the others are cancelled."""
    tasks = {asyncio.ensure_future(a): name for name, a in awaitables.items()}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    first = next(iter(done))
    first.result()
    return tasks[first]


async def _stop_bot(bot: asyncio.subprocess.Process) -> None:
    if bot.returncode is not None:
        return
    bot.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(bot.wait(), BOT_STOP_SECONDS)
    except TimeoutError:
        log.warning("the bot did not stop within %.0f s; killing it", BOT_STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            bot.kill()
        await bot.wait()


def _has_display() -> bool:
    """Whether a graphical browser can open: without one, Python would start a text browser in this terminal."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
