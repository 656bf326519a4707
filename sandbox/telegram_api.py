"""A small Telegram Bot API server for the sandbox and the tests: the real wire protocol, on 127.0.0.1.

A bot talks to it unchanged through its base URLs (`/bot<token>/<method>`, `/file/bot<token>/<path>`): form,
multipart and JSON bodies; `{"ok": ..., "result": ...}` replies; long-polling `getUpdates` with offsets or
webhook delivery; Telegram's error replies (400, 401, 403, 404, 409, 429 with `retry_after`).

The people's side injects what people do through `UserChat` (send text, photos, files, stickers, voice; press
buttons) and reads what the bot did (messages with their edits, callback answers, every API call). Files live
in memory and are reached only by the opaque ids and paths the server made, never through the file system.

    async with TelegramServer() as server:
        alice = server.private_chat(1001)
        alice.send_photo(jpeg_bytes)
        reply = await alice.next_message()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456:TEST-token_for_the_fake_server"
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
# Telegram's limit for a file a bot uploads.
MAX_REQUEST_BYTES = 50 * 1024 * 1024
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
# Parameters whose form values are JSON-encoded objects or arrays (everything else is a plain string).
JSON_PARAMS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "allowed_updates",
    "reply_parameters",
    "link_preview_options",
    "commands",
    "scope",
    "media",
}
UPDATE_KINDS = ("message", "edited_message", "callback_query")


class ApiError(Exception):
    """An error reply, with the status code and description the real Bot API uses."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def body(self) -> dict:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


@dataclass
class ApiCall:
    """One request the bot made: method, decoded parameters (uploads as bytes) and the status replied."""

    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)


@dataclass
class StoredFile:
    data: bytes
    file_unique_id: str
    file_path: str


class TelegramServer:
    """The server: start/stop it, open chats, inject faults, inspect calls."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int = 777000,
        username: str = "fake_bot",
        host: str = "127.0.0.1",
        port: int = 0,
        keep_calls: int | None = None,
    ) -> None:
        self.token = token
        self.host = host
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Calligraphy",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        # A long-running sandbox keeps only the latest calls; tests keep them all.
        self.calls: deque[ApiCall] = deque(maxlen=keep_calls)
        self.unexpected_errors: list[tuple[str, str]] = []
        self.commands: list[dict] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.blocked: set[int] = set()
        self._updates: deque[dict] = deque()
        self._allowed: set[str] | None = None
        self._next_update_id = 1
        self._message_ids: dict[int, itertools.count] = {}
        self.messages: dict[tuple[int, int], dict] = {}
        self.bot_messages: dict[int, list[dict]] = {}
        self.callback_answers: dict[str, dict] = {}
        self._open_queries: set[str] = set()
        self._query_ids = itertools.count(1)
        self.files: dict[str, StoredFile] = {}
        self._file_ids_by_path: dict[str, str] = {}
        # Bumped on every new or edited message, so a page can ask for what changed since it last looked.
        self.revision = 0
        self._message_revisions: dict[tuple[int, int], int] = {}
        self._thumbnails: dict[str, list[tuple[bytes, int, int]]] = {}
        self._faults: dict[str, deque[ApiError]] = {}
        self._changed = asyncio.Event()
        self.chats: dict[int, dict] = {}
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task | None = None
        self.port = port

    # -- lifecycle ---------------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        """The Bot API routes; the sandbox adds its page's routes before `start`."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    async def start(self, app: web.Application | None = None) -> None:
        """Listen on `host`:`port` (port 0: a free one)."""
        self._runner = web.AppRunner(app or self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        self.port = site._server.sockets[0].getsockname()[1]
        log.info("Bot API server on %s", self.api_base)

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._delivery:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> TelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/bot"

    @property
    def file_api_base(self) -> str:
        return f"{self.base_url}/file/bot"

    # -- what tests do ------------------------------------------------------------------------------

    def private_chat(self, user_id: int, first_name: str = "Test") -> UserChat:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        return UserChat(self, {"id": user_id, "type": "private", "first_name": first_name}, user)

    def group_chat(self, chat_id: int, user_id: int, title: str = "Calligraphy club") -> UserChat:
        """`user_id`'s view of a group (chat ids of groups are negative)."""
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        return UserChat(self, {"id": chat_id, "type": "group", "title": title}, user)

    def fail(
        self,
        method: str,
        status: int = 429,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with an error instead of doing them."""
        if status == 429 and retry_after is None:
            retry_after = 1
        text = description or {
            400: "Bad Request: injected",
            403: "Forbidden: bot was blocked by the user",
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, "Injected error")
        queue = self._faults.setdefault(method.lower(), deque())
        queue.extend(ApiError(status, text, retry_after if status == 429 else None) for _ in range(times))

    def calls_of(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def message(self, chat_id: int, message_id: int) -> dict:
        """The message as it is now (after any edits)."""
        return self.messages[(chat_id, message_id)]

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].data

    def changed_messages(self, chat_id: int, since: int) -> list[dict]:
        """Messages of the chat created or edited after revision `since`, oldest first."""
        keys = sorted(k for k, rev in self._message_revisions.items() if k[0] == chat_id and rev > since)
        return [self.messages[k] for k in keys]

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        """Wait until `condition()` is truthy (checked whenever the bot does something); return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    # -- internals: updates ------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _push_update(self, kind: str, payload: dict) -> dict:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return update

    def _new_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _store_file(self, data: bytes, kind: str, extension: str) -> tuple[str, str]:
        file_id = f"{kind}-{secrets.token_urlsafe(12)}"
        unique = hashlib.sha256(data).hexdigest()[:16]
        path = f"{kind}s/file_{len(self.files)}{extension}"
        self.files[file_id] = StoredFile(data, unique, path)
        self._file_ids_by_path[path] = file_id
        return file_id, unique

    def _keep_message(self, message: dict) -> None:
        """Store a new or edited message under a fresh revision."""
        key = (message["chat"]["id"], message["message_id"])
        self.messages[key] = message
        self.revision += 1
        self._message_revisions[key] = self.revision

    def _photo_sizes(self, data: bytes) -> list[dict]:
        """Thumbnails and the full size, like Telegram; the largest one keeps the bytes as sent."""
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._thumbnails:
            self._thumbnails[digest] = _thumbnails(data)
        sizes = []
        for thumb, width, height in self._thumbnails[digest][:-1]:
            file_id, unique = self._store_file(thumb, "photo", ".jpg")
            sizes.append(_size(file_id, unique, width, height, len(thumb)))
        _, width, height = self._thumbnails[digest][-1]
        file_id, unique = self._store_file(data, "photo", ".jpg")
        sizes.append(_size(file_id, unique, width, height, len(data)))
        return sizes

    def _deliverable(self, update: dict) -> bool:
        return self._allowed is None or any(k in self._allowed for k in update if k != "update_id")

    # -- internals: HTTP ---------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        try:
            params = await _read_params(request)
        except ValueError as exc:
            return web.json_response(bad_request(str(exc)).body(), status=400)
        except ConnectionResetError:
            # The client gave up mid-request (a cancelled long poll at shutdown): nobody to answer.
            return web.Response(status=400)
        call = ApiCall(method, params)
        self.calls.append(call)
        self._notify()
        handler = getattr(self, f"_m_{method.lower()}", None)
        faults = self._faults.get(method.lower())
        fault = faults.popleft() if faults else None
        try:
            if fault is not None:
                raise fault
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params)
        except ApiError as exc:
            call.status = exc.status
            if exc is not fault:
                self.unexpected_errors.append((method, exc.description))
            self._notify()
            return web.json_response(exc.body(), status=exc.status)
        self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        file_id = self._file_ids_by_path.get(request.match_info["path"])
        if file_id is not None:
            return web.Response(body=self.files[file_id].data, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    # -- Bot API methods ---------------------------------------------------------------------------

    async def _m_getme(self, params: dict) -> dict:
        return self.bot_user

    async def _m_logout(self, params: dict) -> bool:
        return True

    async def _m_close(self, params: dict) -> bool:
        return True

    async def _m_setmycommands(self, params: dict) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    async def _m_getmycommands(self, params: dict) -> list:
        return self.commands

    async def _m_deletemycommands(self, params: dict) -> bool:
        self.commands = []
        return True

    async def _m_getupdates(self, params: dict) -> list:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = max(_int(params, "timeout", 0), 0)
        if "allowed_updates" in params:
            self._allowed = set(params["allowed_updates"]) or None
        if offset:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()

        def ready() -> list:
            return [u for u in self._updates if self._deliverable(u)][:limit]

        with contextlib.suppress(TimeoutError):
            await self.wait_until(lambda: ready() or self._closing, timeout=timeout, what="updates")
        return ready()

    async def _m_setwebhook(self, params: dict) -> bool:
        url = params.get("url", "")
        if url and not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if flag(params, "drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in params:
            self._allowed = set(params["allowed_updates"]) or None
        self.webhook_url, self.webhook_secret = url, params.get("secret_token") or None
        if url and (self._delivery is None or self._delivery.done()):
            self._delivery = asyncio.create_task(self._deliver())
        return True

    async def _m_deletewebhook(self, params: dict) -> bool:
        if flag(params, "drop_pending_updates"):
            self._updates.clear()
        self.webhook_url, self.webhook_secret = "", None
        return True

    async def _m_getwebhookinfo(self, params: dict) -> dict:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def _deliver(self) -> None:
        """POST pending updates to the webhook one by one, in order, retrying until it answers 200."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while self.webhook_url and not self._closing:
                pending = [u for u in self._updates if self._deliverable(u)]
                if not pending:
                    self._updates.clear()
                    await self.wait_until(lambda: self._updates or not self.webhook_url or self._closing, timeout=3600)
                    continue
                update = pending[0]
                headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} if self.webhook_secret else {}
                try:
                    async with session.post(self.webhook_url, json=update, headers=headers) as response:
                        delivered = response.status == 200
                except OSError as exc:
                    log.info("webhook delivery failed: %s", exc)
                    delivered = False
                if delivered:
                    while self._updates and self._updates[0]["update_id"] <= update["update_id"]:
                        self._updates.popleft()
                    self._notify()
                else:
                    await asyncio.sleep(0.2)

    def _chat_of(self, params: dict) -> dict:
        chat_id = _int(params, "chat_id", 0)
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _bot_message(self, params: dict, **content: Any) -> dict:
        chat = self._chat_of(params)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        reply_to = _reply_to(params)
        if reply_to is not None:
            original = self.messages.get((chat["id"], reply_to))
            if original is None:
                raise bad_request("message to be replied not found")
            message["reply_to_message"] = original
        markup = params.get("reply_markup")
        if markup:
            message["reply_markup"] = _check_markup(markup)
        self._keep_message(message)
        self.bot_messages.setdefault(chat["id"], []).append(message)
        return message

    async def _m_sendmessage(self, params: dict) -> dict:
        text = str(params.get("text", ""))
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        return self._bot_message(params, text=text)

    async def _m_sendphoto(self, params: dict) -> dict:
        photo = params.get("photo")
        if isinstance(photo, bytes):
            sizes = self._photo_sizes(photo)
        elif isinstance(photo, str) and photo in self.files:
            stored = self.files[photo]
            sizes = [_size(photo, stored.file_unique_id, 0, 0, len(stored.data))]
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        caption = str(params.get("caption", ""))
        if len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        return self._bot_message(params, photo=sizes, **({"caption": caption} if caption else {}))

    async def _m_sendchataction(self, params: dict) -> bool:
        self._chat_of(params)
        if not params.get("action"):
            raise bad_request("wrong parameter action in request")
        return True

    async def _m_answercallbackquery(self, params: dict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_queries:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = params
        return True

    def _editable(self, params: dict) -> dict:
        key = (_int(params, "chat_id", 0), _int(params, "message_id", 0))
        message = self.messages.get(key)
        if message is None or message["from"].get("id") != self.bot_user["id"]:
            raise bad_request("message to edit not found")
        return message

    def _edit(self, message: dict, params: dict, **content: Any) -> dict:
        markup = _check_markup(params["reply_markup"]) if params.get("reply_markup") else None
        updated = {k: v for k, v in message.items() if k != "reply_markup"} | content
        if markup:
            updated["reply_markup"] = markup
        if {k: v for k, v in updated.items() if k != "edit_date"} == {
            k: v for k, v in message.items() if k != "edit_date"
        }:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the "
                "same as a current content and reply markup of the message"
            )
        updated["edit_date"] = int(time.time())
        message.clear()
        message.update(updated)
        self._keep_message(message)
        return message

    async def _m_editmessagetext(self, params: dict) -> dict:
        message = self._editable(params)
        text = str(params.get("text", ""))
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        if not text.strip():
            raise bad_request("message text is empty")
        return self._edit(message, params, text=text)

    async def _m_editmessagecaption(self, params: dict) -> dict:
        message = self._editable(params)
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        return self._edit(message, params, caption=str(params.get("caption", "")))

    async def _m_editmessagereplymarkup(self, params: dict) -> dict:
        message = self._editable(params)
        return self._edit(message, params)

    async def _m_getfile(self, params: dict) -> dict:
        file_id = str(params.get("file_id", ""))
        stored = self.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }


class UserChat:
    """One user in one chat: what they send becomes updates; `next_message` reads the bot's answers in order."""

    def __init__(self, server: TelegramServer, chat: dict, user: dict) -> None:
        self.server, self.chat, self.user = server, chat, user
        server.chats.setdefault(chat["id"], chat)
        # Like a person joining a chat: what the bot said before is not news to this view.
        self._seen = len(server.bot_messages.get(chat["id"], []))

    @property
    def chat_id(self) -> int:
        return self.chat["id"]

    @property
    def user_id(self) -> int:
        return self.user["id"]

    def _message(self, reply_to: dict | None = None, **content: Any) -> dict:
        message = {
            "message_id": self.server._new_message_id(self.chat_id),
            "from": self.user,
            "chat": self.chat,
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = self.server.message(self.chat_id, reply_to["message_id"])
        self.server._keep_message(message)
        self.server._push_update("message", message)
        return message

    def send_text(self, text: str, reply_to: dict | None = None) -> dict:
        """A text message; a leading /command gets its `bot_command` entity, as Telegram adds it."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._message(reply_to, **content)

    def send_photo(self, data: bytes, caption: str | None = None) -> dict:
        content: dict[str, Any] = {"photo": self.server._photo_sizes(data)}
        if caption:
            content["caption"] = caption
        return self._message(**content)

    def send_document(self, data: bytes, file_name: str, mime_type: str) -> dict:
        file_id, unique = self.server._store_file(data, "document", "." + file_name.rsplit(".", 1)[-1])
        document = {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        return self._message(document=document)

    def send_sticker(self) -> dict:
        file_id, unique = self.server._store_file(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "sticker", ".webp")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._message(sticker=sticker)

    def send_voice(self, data: bytes = b"OggS\x00fake voice", duration: int = 2) -> dict:
        file_id, unique = self.server._store_file(data, "voice", ".oga")
        voice = {
            "file_id": file_id,
            "file_unique_id": unique,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return self._message(voice=voice)

    def press(self, message: dict, callback_data: str) -> str:
        """Tap an inline button (any data: tests may forge it); returns the callback query id."""
        query_id = str(next(self.server._query_ids))
        self.server._open_queries.add(query_id)
        current = self.server.message(self.chat_id, message["message_id"])
        self.server._push_update(
            "callback_query",
            {
                "id": query_id,
                "from": self.user,
                "message": current,
                "chat_instance": str(self.chat_id),
                "data": callback_data,
            },
        )
        return query_id

    async def answer(self, query_id: str, timeout: float = 5.0) -> dict:
        """The bot's answerCallbackQuery parameters for that press."""
        answers = self.server.callback_answers
        return await self.server.wait_until(
            lambda: answers.get(query_id), timeout, f"an answer to callback query {query_id}"
        )

    async def next_message(self, timeout: float = 5.0) -> dict:
        """The next message the bot sent to this chat that this UserChat has not returned yet."""
        sent = self.server.bot_messages

        def unseen() -> dict | None:
            messages = sent.get(self.chat_id, [])
            return messages[self._seen] if len(messages) > self._seen else None

        message = await self.server.wait_until(unseen, timeout, f"a bot message in chat {self.chat_id}")
        self._seen += 1
        return message

    async def no_message(self, within: float = 0.3) -> None:
        """Assert the bot sends nothing more to this chat for `within` seconds."""
        try:
            extra = await self.next_message(timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected bot message: {extra}")


def _thumbnails(data: bytes) -> list[tuple[bytes, int, int]]:
    """(JPEG, width, height) of the 90 and 320 px thumbnails, then (b"", width, height) of the original."""
    sizes = []
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            for side in (90, 320):
                if max(width, height) > side:
                    thumb = img.convert("RGB")
                    thumb.thumbnail((side, side))
                    out = io.BytesIO()
                    thumb.save(out, "JPEG", quality=80)
                    sizes.append((out.getvalue(), thumb.width, thumb.height))
    except (OSError, ValueError, Image.DecompressionBombError):
        width = height = 0
    return [*sizes, (b"", width, height)]


def _size(file_id: str, unique: str, width: int, height: int, size: int) -> dict:
    return {"file_id": file_id, "file_unique_id": unique, "width": width, "height": height, "file_size": size}


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string plus a form, multipart or JSON body, with JSON-encoded object parameters decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("request body must be a JSON object")
        return params | body
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            params[key] = value.file.read() if isinstance(value, web.FileField) else value
    for key in JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                raise ValueError(f"can't parse {key} JSON object") from None
    return params


def _int(params: dict, key: str, default: int) -> int:
    value = params.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


def flag(params: dict, key: str) -> bool:
    """A boolean parameter as Bot API clients send it: true, True or 1."""
    return str(params.get(key, "")).lower() in ("true", "1")


def _reply_to(params: dict) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, dict) and "message_id" in reply:
        return int(reply["message_id"])
    return _int(params, "reply_to_message_id", 0) or None


def _check_markup(markup: Any) -> dict:
    """Validate an inline keyboard as Telegram does, above all the 1-64 byte callback_data."""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardMarkup must be an Array")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup
