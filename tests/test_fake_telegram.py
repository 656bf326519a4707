"""The fake Bot API server speaks the wire protocol itself, checked with a plain HTTP client (no PTB)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import pytest
from aiohttp import ClientSession, FormData, web
from bot_harness import RED, image_bytes
from fake_telegram import FakeTelegram


@dataclass
class Client:
    """Any HTTP client, as a bot on another stack would talk to the server."""

    fake: FakeTelegram
    session: ClientSession

    async def call(self, method: str, data=None, *, token: str | None = None, as_json: bool = False):
        """POST a Bot API method; (status, decoded JSON body)."""
        url = f"{self.fake.api_base}{token or self.fake.token}/{method}"
        kwargs = {"json": data} if as_json else {"data": data}
        async with self.session.post(url, **kwargs) as response:
            return response.status, await response.json()

    async def download(self, file_path: str) -> bytes:
        async with self.session.get(f"{self.fake.file_api_base}{self.fake.token}/{file_path}") as response:
            return await response.read()


@pytest.fixture
async def server():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def api(server):
    async with ClientSession() as session:
        yield Client(server, session)


async def test_get_me_and_authentication(server, api):
    assert await api.call("getMe") == (200, {"ok": True, "result": server.bot_user})
    status, body = await api.call("getMe", token="1:wrong")
    assert (status, body["description"]) == (401, "Unauthorized")
    status, body = await api.call("noSuchMethod")
    assert (status, body["error_code"]) == (404, 404)


async def test_get_updates_offsets_and_long_polling(server, api):
    alice = server.private_chat(1)
    alice.send_text("/start")
    alice.send_text("hello")
    _, body = await api.call("getUpdates", {"timeout": "0"})
    ids = [u["update_id"] for u in body["result"]]
    assert ids == [1, 2]
    assert body["result"][0]["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    _, body = await api.call("getUpdates", {"offset": "2", "limit": "5"})
    assert [u["update_id"] for u in body["result"]] == [2]
    _, body = await api.call("getUpdates", {"offset": "3", "timeout": "0"})
    assert body["result"] == [] and server.pending_updates == 0

    started = time.monotonic()
    waiting = asyncio.create_task(api.call("getUpdates", {"offset": "3", "timeout": "5"}))
    await asyncio.sleep(0.2)
    alice.send_text("late")
    _, body = await waiting
    assert [u["message"]["text"] for u in body["result"]] == ["late"]
    assert time.monotonic() - started < 2
    started = time.monotonic()
    _, body = await api.call("getUpdates", {"offset": "4", "timeout": "1"})
    assert body["result"] == [] and time.monotonic() - started >= 0.9


async def test_allowed_updates_filter(server, api):
    alice = server.private_chat(1)
    message = alice.send_text("hi")
    alice.press(message, "x")
    _, body = await api.call("getUpdates", {"allowed_updates": json.dumps(["callback_query"])})
    assert [list(u)[1] for u in body["result"]] == ["callback_query"]


async def test_send_message_form_and_json_bodies_and_validation(server, api):
    alice = server.private_chat(5)
    question = alice.send_text("hi")
    markup = {"inline_keyboard": [[{"text": "ok", "callback_data": "fb:1:0"}]]}
    status, body = await api.call(
        "sendMessage",
        {"chat_id": "5", "text": "hello", "reply_markup": json.dumps(markup), "reply_to_message_id": "1"},
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    assert body["result"]["reply_to_message"]["message_id"] == question["message_id"]
    assert (await alice.next_message())["text"] == "hello"
    status, body = await api.call("sendMessage", {"chat_id": 5, "text": "json"}, as_json=True)
    assert status == 200 and body["result"]["message_id"] == 3
    errors = [
        ({"chat_id": "6", "text": "x"}, "Bad Request: chat not found"),
        ({"chat_id": "5", "text": " "}, "Bad Request: message text is empty"),
        ({"chat_id": "5", "text": "x" * 4097}, "Bad Request: message is too long"),
        (
            {
                "chat_id": "5",
                "text": "x",
                "reply_markup": json.dumps({"inline_keyboard": [[{"text": "a", "callback_data": "d" * 65}]]}),
            },
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            {"chat_id": "5", "text": "x", "reply_markup": "{not json"},
            "Bad Request: can't parse reply_markup JSON object",
        ),
    ]
    for params, description in errors:
        status, body = await api.call("sendMessage", params)
        assert (status, body["description"]) == (400, description)
    assert [d for _, d in server.unexpected_errors] == [d for _, d in errors][:-1]


async def test_injected_errors_and_blocked_users(server, api):
    server.private_chat(5)
    server.fail("sendMessage", 429, retry_after=3)
    status, body = await api.call("sendMessage", {"chat_id": "5", "text": "x"})
    assert status == 429 and body["parameters"] == {"retry_after": 3}
    assert (await api.call("sendMessage", {"chat_id": "5", "text": "x"}))[0] == 200
    server.blocked.add(5)
    status, body = await api.call("sendChatAction", {"chat_id": "5", "action": "typing"})
    assert (status, body["description"]) == (403, "Forbidden: bot was blocked by the user")
    server.blocked.clear()
    assert await api.call("sendChatAction", {"chat_id": "5", "action": "typing"}) == (
        200,
        {"ok": True, "result": True},
    )
    assert server.unexpected_errors == [("sendChatAction", "Forbidden: bot was blocked by the user")]


async def test_files_upload_and_download(server, api):
    alice = server.private_chat(7)
    photo = image_bytes(RED, (800, 600))
    sent = alice.send_photo(photo)
    assert [(s["width"], s["height"]) for s in sent["photo"]] == [(90, 68), (320, 240), (800, 600)]
    _, body = await api.call("getFile", {"file_id": sent["photo"][-1]["file_id"]})
    assert await api.download(body["result"]["file_path"]) == photo
    form = FormData()
    form.add_field("chat_id", "7")
    form.add_field("caption", "look")
    form.add_field("photo", photo, filename="p.jpg", content_type="image/jpeg")
    status, body = await api.call("sendPhoto", form)
    assert status == 200 and body["result"]["caption"] == "look"
    assert server.file_bytes(body["result"]["photo"][-1]["file_id"]) == photo
    status, body = await api.call("getFile", {"file_id": "nope"})
    assert (status, body["description"]) == (400, "Bad Request: invalid file_id")


async def test_callback_answers_and_edits(server, api):
    alice = server.private_chat(8)
    _, body = await api.call("sendMessage", {"chat_id": "8", "text": "pick"})
    message = body["result"]
    query_id = alice.press(message, "fb:1:0")
    assert (await api.call("answerCallbackQuery", {"callback_query_id": query_id, "text": "ok"}))[0] == 200
    assert (await alice.answer(query_id))["text"] == "ok"
    assert (await api.call("answerCallbackQuery", {"callback_query_id": query_id}))[0] == 400
    edit = {"chat_id": "8", "message_id": str(message["message_id"]), "text": "picked"}
    assert (await api.call("editMessageText", edit))[0] == 200
    assert server.message(8, message["message_id"])["text"] == "picked"
    status, body = await api.call("editMessageText", edit)
    assert status == 400 and body["description"].startswith("Bad Request: message is not modified")


async def test_webhook_blocks_polling_and_delivers(server, api):
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.headers["X-Telegram-Bot-Api-Secret-Token"] == "s"
        received.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        await api.call("setWebhook", {"url": f"http://127.0.0.1:{port}/hook", "secret_token": "s"})
        assert (await api.call("getUpdates"))[0] == 409
        server.private_chat(9).send_text("via webhook")
        await server.wait_until(lambda: received, what="a webhook delivery")
        assert received[0]["message"]["text"] == "via webhook"
        await api.call("deleteWebhook")
        assert (await api.call("getUpdates"))[0] == 200
    finally:
        await runner.cleanup()
    assert [m for m, _ in server.unexpected_errors] == ["getUpdates"]
