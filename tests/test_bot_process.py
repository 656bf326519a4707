"""`calligraphy bot` as a real process against the fake Bot API: polling, webhook, signals, crashes, restarts."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession
from bot_harness import ADMIN_ID, BLUE, GREEN, RED, assert_no_errors, image_bytes, make_home, running_bot, settings_for
from fake_telegram import FakeTelegram

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60


def bot_env(fake: FakeTelegram, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_", "CALLIGRAPHY_"))}
    env.update(
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_BASE=fake.api_base,
        TELEGRAM_FILE_API_BASE=fake.file_api_base,
        CALLIGRAPHY_HOME=str(home),
        BOT_ADMIN_IDS=str(ADMIN_ID),
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


async def start_bot(env: dict[str, str], cwd: Path, *options: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calligraphy",
        *options,
        "bot",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, str]:
    process.send_signal(sig)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, output.decode()


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored_ids(home: Path) -> set[int]:
    with sqlite3.connect(home / "bot.sqlite3") as db:
        return {row[0] for row in db.execute("SELECT id FROM predictions")}


@pytest.mark.slow
async def test_polling_process_answers_and_stops_cleanly_on_sigterm(tmp_path):
    home = make_home(tmp_path)
    async with FakeTelegram() as fake:
        process = await start_bot(bot_env(fake, home), tmp_path, "--verbose")
        try:
            await fake.wait_until(lambda: fake.calls_of("getUpdates"), START_TIMEOUT, "the bot to poll")
            alice = fake.private_chat(1001)
            alice.send_photo(image_bytes(GREEN))
            reply = await alice.next_message(timeout=10)
            assert reply["text"].startswith("This is 隶书 lishu")
            maps = mapped_files(process.pid)
            assert "onnxruntime" in maps
            assert "/torch/" not in maps and "fastai" not in maps
        finally:
            code, output = await stop(process, signal.SIGTERM)
    assert code == 0, output
    assert fake.token not in output and fake.token.split(":")[1] not in output
    assert "Traceback" not in output
    assert stored_ids(home) == {1}


@pytest.mark.slow
async def test_webhook_process_receives_updates_and_stops_on_sigint(tmp_path):
    home, port = make_home(tmp_path), free_port()
    url = f"http://127.0.0.1:{port}/telegram-hook"
    async with FakeTelegram() as fake:
        env = bot_env(
            fake,
            home,
            BOT_WEBHOOK_URL=url,
            BOT_WEBHOOK_PORT=str(port),
            BOT_WEBHOOK_LISTEN="127.0.0.1",
            BOT_WEBHOOK_SECRET="s3cret-value",
        )
        process = await start_bot(env, tmp_path)
        try:
            await fake.wait_until(lambda: fake.webhook_url, START_TIMEOUT, "setWebhook")
            assert (fake.webhook_url, fake.webhook_secret) == (url, "s3cret-value")
            bob = fake.private_chat(1002)
            bob.send_photo(image_bytes(BLUE))
            assert (await bob.next_message(timeout=10))["text"].startswith("This is 小篆 xiaozhuan")
            async with ClientSession() as session:
                forged = {
                    "update_id": 99,
                    "message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}},
                }
                async with session.post(url, json=forged) as response:
                    assert response.status == 403
            assert not fake.calls_of("getUpdates")
        finally:
            code, output = await stop(process, signal.SIGINT)
    assert code == 0, output
    assert fake.token not in output


@pytest.mark.slow
async def test_killed_mid_burst_loses_nothing_it_acknowledged(tmp_path):
    home = make_home(tmp_path)
    async with FakeTelegram() as fake:
        process = await start_bot(bot_env(fake, home), tmp_path)
        await fake.wait_until(lambda: fake.calls_of("getUpdates"), START_TIMEOUT, "the bot to poll")
        users = [fake.private_chat(5000 + i) for i in range(40)]
        for i, user in enumerate(users):
            user.send_photo(image_bytes((200, 40 + i, 40), (800, 600)))
        await fake.wait_until(lambda: len(fake.calls_of("sendMessage")) >= 5, 30, "the first replies")
        process.kill()
        await process.wait()
    acknowledged = {int(re.search(r"#(\d+) ·", m["text"])[1]) for msgs in fake.bot_messages.values() for m in msgs}
    assert len(acknowledged) >= 5
    assert acknowledged <= stored_ids(home)


async def test_restart_with_the_same_database(tmp_path, caplog):
    home = make_home(tmp_path)
    async with FakeTelegram() as fake:
        settings = settings_for(fake, home)
        alice = fake.private_chat(1001)
        async with running_bot(settings):
            alice.send_photo(image_bytes(RED))
            first = await alice.next_message()
        async with running_bot(settings) as app:
            answer = await alice.answer(alice.press(first, "fb:1:1"))
            assert answer["text"] == "Recorded: 隶书 lishu (clerical). Thank you!"
            alice.send_text("/feedback xiaozhuan", reply_to=first)
            assert (await alice.next_message())["text"].startswith("Recorded: 小篆")
            alice.send_photo(image_bytes(GREEN))
            assert "#2 · model v0001" in (await alice.next_message())["text"]
            db = app.bot_data["services"].db
            assert db.get(1).label_given == "xiaozhuan"
            assert db.stats().predictions_total == 2, "the first photo must not be classified again"
    assert_no_errors(caplog, fake)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_change", "expected"),
    [
        ({"TELEGRAM_TOKEN": ""}, "calligraphy bot: TELEGRAM_TOKEN is not set"),
        ({"TELEGRAM_TOKEN": "999:not-the-right-token"}, "calligraphy bot: TELEGRAM_TOKEN was refused"),
        ({"TELEGRAM_API_BASE": "http://127.0.0.1:9/bot"}, "calligraphy bot: cannot reach the Bot API server"),
    ],
)
async def test_bad_settings_stop_start_up_with_one_line(tmp_path, env_change, expected):
    home = make_home(tmp_path)
    async with FakeTelegram() as fake:
        process = await start_bot(bot_env(fake, home, **env_change), tmp_path)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    lines = output.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines[-1].startswith(expected), lines
    assert "Traceback" not in output.decode()
