"""The sandbox's server over plain HTTP: its page, the JSON API the page uses, its limits, and the whole thing
with the real bot behind it (`calligraphy sandbox` as a process)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession, FormData
from sandbox_process import png, running_sandbox
from yarl import URL

import model_store.store
from calligraphy.cli import main
from calligraphy.errors import UsageError
from sandbox.run import SandboxConfig, prepare_model, serve
from sandbox.telegram_api import TelegramServer
from sandbox.web import ADMIN, CLIENT_HEADER, MAX_UPLOAD_BYTES, USER, ChatPage

PAGE = {CLIENT_HEADER: "1"}
RED = (230, 20, 20)
CLASS_NAMES = ("kaishu", "lishu", "xiaozhuan")


@pytest.fixture
async def page():
    """The sandbox's server in this process, without a bot: what the page sends and what it would be shown."""
    server = TelegramServer()
    chat_page = ChatPage(server)
    app = server.web_app()
    chat_page.add_routes(app)
    await server.start(app)
    async with ClientSession(base_url=server.base_url, headers=PAGE) as session:
        yield server, session
    await server.stop()


async def upload(session: ClientSession, data: bytes, name: str = "photo.png", who: str = "user"):
    form = FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with session.post(f"/api/chats/{who}/upload", data=form) as response:
        return response.status, await response.json()


async def test_page_and_its_files_are_served_with_a_strict_policy(page):
    _, session = page
    async with session.get("/") as response:
        html = await response.text()
        assert response.status == 200 and response.content_type == "text/html"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    for asset, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("icon.svg", "image/svg+xml")):
        assert f"/static/{asset}" in html
        async with session.get(f"/static/{asset}") as response:
            assert (response.status, response.content_type) == (200, kind)
    async with session.get("/api/state") as response:
        state = await response.json()
    assert {s["style"] for s in state["samples"]} == set(CLASS_NAMES)
    assert [p["user_id"] for p in state["people"]] == [USER.user_id, ADMIN.user_id]
    for sample in state["samples"]:
        async with session.get(sample["url"]) as response:
            assert (response.status, response.content_type) == (200, "image/png")
            assert len(await response.read()) < 64 * 1024


@pytest.mark.parametrize(
    "path",
    [
        "/static/../run.py",
        "/static/..%2Frun.py",
        "/static/%2e%2e%2frun.py",
        "/static/..%5Crun.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/",
        "/static/.",
        "/samples/README.md",
        "/samples/..%2F..%2Fpyproject.toml",
        "/samples/%2Fetc%2Fpasswd",
        "/api/files/..%2F..%2Fetc%2Fpasswd",
        "/api/files/%2Fetc%2Fpasswd",
        "/file/bot123456:TEST-token_for_the_fake_server/..%2F..%2Fetc%2Fpasswd",
        "/sandbox/run.py",
    ],
)
async def test_nothing_outside_its_own_folders_can_be_read(page, path):
    _, session = page
    async with session.get(URL(path, encoded=True)) as response:
        body = await response.read()
    assert response.status == 404, (path, response.status)
    assert b"root:" not in body and b"def run(" not in body and b"[build-system]" not in body


async def test_unknown_bot_api_methods_and_tokens_get_telegram_errors(page):
    server, session = page
    async with session.post(f"{server.api_base}{server.token}/launchRocket", data={"chat_id": "1"}) as response:
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    async with session.post(f"{server.api_base}1:wrong/getMe") as response:
        assert (response.status, (await response.json())["error_code"]) == (401, 401)


async def test_uploads_are_limited_to_what_the_bot_can_download(page):
    server, session = page
    before = server.revision
    status, body = await upload(session, bytes(MAX_UPLOAD_BYTES + 1), "big.bin")
    assert status == 413 and "up to 20 MB" in body["error"], body
    # Far over the limit: refused from Content-Length, before reading the body.
    status, body = await upload(session, bytes(MAX_UPLOAD_BYTES + 2 * 1024 * 1024), "bigger.bin")
    assert status == 413 and "22.0 MB" in body["error"], body
    assert server.revision == before, "a refused upload must not reach the chat"
    status, body = await upload(session, bytes(MAX_UPLOAD_BYTES), "exactly.bin")
    assert status == 200 and body["message"]["document"] == "exactly.bin"


async def test_images_go_as_photos_and_other_files_as_documents(page):
    server, session = page
    status, body = await upload(session, png(RED), "../../etc/red.png")
    assert status == 200 and body["message"]["photo"] and not body["message"]["from_bot"]
    async with session.get(f"/api/files/{body['message']['photo']}") as response:
        assert (response.status, response.content_type) == (200, "image/png")
        assert await response.read() == png(RED)
    status, body = await upload(session, b"%PDF-1.4 not an image", "../notes.pdf")
    name = body["message"]["document"]
    assert status == 200 and name.endswith("notes.pdf") and "/" not in name
    update = server._updates[-1]["message"]
    document = update["document"]
    async with session.get(f"/api/files/{document['file_id']}") as response:
        assert response.content_type == "application/octet-stream"
        assert response.headers["Content-Disposition"] == "attachment"


async def test_the_page_sees_the_bots_messages_and_edits_by_long_polling(page):
    server, session = page
    async with session.post("/api/chats/user/text", json={"text": "/help"}) as response:
        assert response.status == 200
    async with session.get("/api/updates", params={"after": "0", "wait": "0"}) as response:
        news = await response.json()
    assert [(m["chat"], m["message"]["text"]) for m in news["messages"]] == [("user", "/help")]

    # A bot on the Bot API side, over HTTP: the page's long poll returns as soon as it answers.
    keyboard = '{"inline_keyboard": [[{"text": "ok", "callback_data": "fb:1:0"}]]}'
    waiting = asyncio.create_task(session.get("/api/updates", params={"after": str(news["rev"]), "wait": "10"}))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    api = f"{server.api_base}{server.token}"
    reply = {"chat_id": str(ADMIN.user_id), "text": "for the admin", "reply_markup": keyboard}
    async with session.post(f"{api}/sendMessage", data=reply) as response:
        bot_message = (await response.json())["result"]
    async with await waiting as response:
        news = await response.json()
    assert time.monotonic() - started < 2
    [item] = news["messages"]
    assert item["chat"] == "admin" and item["message"]["from_bot"]
    assert item["message"]["buttons"] == [[{"text": "ok", "callback_data": "fb:1:0"}]]

    edit = {"chat_id": str(ADMIN.user_id), "message_id": str(bot_message["message_id"]), "text": "edited"}
    async with session.post(f"{api}/editMessageText", data=edit) as response:
        assert response.status == 200
    async with session.get("/api/updates", params={"after": str(news["rev"]), "wait": "0"}) as response:
        [item] = (await response.json())["messages"]
    assert (item["message"]["text"], item["message"]["edited"]) == ("edited", True)


async def test_bad_requests_get_one_clear_message(page):
    _, session = page
    async with session.post("/api/chats/user/text", json={"text": "hi"}) as response:
        mine = (await response.json())["message"]
    cases = [
        ("/api/chats/user/text", {"json": {"text": "   "}}, 400, "type a message first"),
        ("/api/chats/user/text", {"json": {"text": "x" * 4097}}, 400, "at most 4096"),
        ("/api/chats/user/text", {"json": {"text": "hi", "reply_to": 999}}, 404, "no message 999"),
        ("/api/chats/user/text", {"data": b"not json"}, 400, "must be JSON"),
        ("/api/chats/user/text", {"json": ["a list"]}, 400, "JSON object"),
        ("/api/chats/mallory/text", {"json": {"text": "hi"}}, 404, "no such person"),
        ("/api/chats/user/press", {"json": {"message_id": mine["id"], "data": "fb:1:0"}}, 400, "no such button"),
        ("/api/chats/user/press", {"json": {"message_id": "1", "data": "x"}}, 400, "must be a number"),
        ("/api/chats/user/upload", {"data": FormData({"other": "field"}, default_to_multipart=True)}, 400, "no file"),
        ("/api/chats/user/upload", {"json": {"file": "x"}}, 400, "multipart"),
    ]
    for path, kwargs, status, message in cases:
        async with session.post(path, **kwargs) as response:
            body = await response.json()
        assert (response.status, message in body.get("error", "")) == (status, True), (path, kwargs, body)
    async with session.get("/api/updates", params={"after": "soon"}) as response:
        assert response.status == 400 and "must be a number" in (await response.json())["error"]


async def test_only_the_page_on_a_loopback_name_may_post(page):
    server, _ = page
    async with ClientSession(base_url=server.base_url) as plain:
        async with plain.post("/api/chats/user/text", json={"text": "hi"}) as response:
            assert response.status == 403 and CLIENT_HEADER in (await response.json())["error"]
        # DNS rebinding: another site's name resolving to 127.0.0.1.
        async with plain.get("/api/state", headers={"Host": f"evil.example:{server.port}"}) as response:
            assert response.status == 403
        async with plain.get("/api/state", headers={"Host": f"localhost:{server.port}"}) as response:
            assert response.status == 200
    assert server.revision == 0


def test_refuses_a_network_address_and_a_missing_model(tmp_path, monkeypatch, capsys):
    assert main(["sandbox", "--host", "0.0.0.0", "--no-browser"]) == 2
    assert "--unsafe-listen" in capsys.readouterr().err
    monkeypatch.setattr(model_store.store, "default_model_path", lambda: tmp_path / "no-default-model")
    with pytest.raises(UsageError, match=r"no model to serve.*--model runs/v1"):
        prepare_model(tmp_path / "home", None)
    assert main(["sandbox", "--home", str(tmp_path / "home"), "--model", str(tmp_path), "--no-browser"]) == 2
    assert "not a model directory" in capsys.readouterr().err


async def test_a_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = SandboxConfig(host="127.0.0.1", port=port, home=tmp_path, open_browser=False)
        with pytest.raises(UsageError, match=rf"cannot listen on 127\.0\.0\.1:{port}.*--port"):
            await serve(config, "a model")


async def poll_until(session: ClientSession, url: str, rev: int, found, timeout: float = 30.0):
    """Long-poll the page's news until `found(message_view)` holds for one message; (that message, rev)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{url}api/updates", params={"after": str(rev), "wait": "5"}) as response:
            news = await response.json()
        rev = news["rev"]
        for item in news["messages"]:
            if found(item):
                return item["message"], rev
    raise AssertionError("the bot did not answer in time")


@pytest.mark.timeout(180)
async def test_the_real_bot_answers_through_the_sandbox(tmp_path):
    """`calligraphy sandbox` end to end over HTTP: photo, probabilities, feedback button, admin command, stop."""
    # A .env in the working directory must not send the sandbox's bot elsewhere.
    (tmp_path / ".env").write_text(
        "BOT_WEBHOOK_URL=https://example.invalid/hook\nCALLIGRAPHY_DB_URL=sqlite:////nonexistent/db.sqlite3\n"
    )
    with running_sandbox(tmp_path) as sandbox:
        url = sandbox.url
        assert url.startswith("http://127.0.0.1:")
        async with ClientSession(headers=PAGE) as session:
            form = FormData()
            form.add_field("file", png(RED), filename="red.png", content_type="image/png")
            async with session.post(f"{url}api/chats/user/upload", data=form) as response:
                assert response.status == 200
            reply, rev = await poll_until(session, url, 0, lambda i: i["chat"] == "user" and i["message"]["from_bot"])
            assert reply["text"].startswith("This is 楷书 kaishu"), reply["text"]
            for name in CLASS_NAMES:
                assert name in reply["text"]
            assert reply["text"].count("%") == len(CLASS_NAMES)
            correct = next(b for row in reply["buttons"] for b in row if b["text"] == "✓ correct")

            press = {"message_id": reply["id"], "data": correct["callback_data"]}
            async with session.post(f"{url}api/chats/user/press", json=press) as response:
                answer = await response.json()
            thanks = "Recorded: 楷书 kaishu (regular). Thank you!"
            assert answer == {"answered": True, "text": thanks, "show_alert": False}
            edited, rev = await poll_until(session, url, rev, lambda i: i["message"]["edited"])
            assert "Your answer: 楷书 kaishu (regular)" in edited["text"]

            for who, expected in (("user", "for the bot's administrators"), ("admin", "Model: v0001")):
                async with session.post(f"{url}api/chats/{who}/text", json={"text": "/status"}) as response:
                    assert response.status == 200
                answer, rev = await poll_until(
                    session, url, rev, lambda i, who=who: i["chat"] == who and i["message"]["from_bot"]
                )
                assert expected in answer["text"]
        assert sandbox.stop() == 0
    assert (sandbox.home / "bot.sqlite3").is_file(), "the sandbox's bot keeps its data in --home"
    assert "Traceback" not in sandbox.output, sandbox.output
    assert Path(tmp_path / "home" / "models" / "current").read_text().strip() == "v0001"
