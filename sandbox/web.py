"""The chat page and the JSON endpoints it uses: what a person does goes in as updates, what the bot sends comes out.

Two people share the page: an ordinary user and an administrator (in BOT_ADMIN_IDS), each in their own private
chat with the bot, as two Telegram accounts would be. The page only reaches files through names listed when it
starts (its static folder and the samples) and through the opaque ids of the server's in-memory files.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image

from sandbox.telegram_api import MAX_DOWNLOAD_BYTES, MAX_TEXT, TelegramServer, UserChat, flag

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
SAMPLES_DIR = PACKAGE_DIR / "samples"
# What the bot can fetch through getFile: a bigger upload could never be answered.
MAX_UPLOAD_BYTES = MAX_DOWNLOAD_BYTES
# Room for the multipart headers around the file.
MULTIPART_SLACK = 64 * 1024
POLL_SECONDS = 25.0
ANSWER_SECONDS = 15.0
CHUNK = 256 * 1024
# The page sends this header on every POST: a form or script on another site cannot without a CORS preflight,
# which this server never grants.
CLIENT_HEADER = "X-Sandbox-Client"
STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# The bot registers only its public commands with setMyCommands; these are the ones for BOT_ADMIN_IDS.
ADMIN_COMMANDS = (
    {"command": "status", "description": "model, predictions and feedback so far"},
    {"command": "relabel", "description": "label the low-confidence images"},
    {"command": "retrain", "description": "retrain now (/retrain status: how it goes)"},
    {"command": "rollback", "description": "serve the previous model again"},
)


@dataclass(frozen=True)
class Person:
    key: str
    user_id: int
    name: str
    admin: bool


USER = Person("user", 1001, "You", admin=False)
ADMIN = Person("admin", 1002, "Admin", admin=True)
PEOPLE = (USER, ADMIN)


class PageError(Exception):
    """A request the page should not have made: answered as JSON `{"error": ...}` with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def listed_files(folder: Path, suffixes: set[str] | dict[str, str]) -> dict[str, Path]:
    """The folder's files by name, listed once: the only paths a request can reach."""
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in suffixes}


def image_format(data: bytes) -> str | None:
    """Pillow's name for the image format, from the header alone; None for anything else."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


class ChatPage:
    """The page's routes over one server; `allowed_hosts` None accepts any Host header (--unsafe-listen)."""

    def __init__(
        self,
        server: TelegramServer,
        *,
        allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        self.server = server
        self.allowed_hosts = allowed_hosts
        self.max_upload_bytes = max_upload_bytes
        self.chats: dict[str, UserChat] = {p.key: server.private_chat(p.user_id, p.name) for p in PEOPLE}
        self.static = listed_files(STATIC_DIR, STATIC_TYPES)
        self.samples = listed_files(SAMPLES_DIR, {".png", ".jpg"})

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(self._guard)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static_file)
        app.router.add_get("/samples/{name}", self.sample)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/updates", self.updates)
        app.router.add_get("/api/files/{file_id}", self.file)
        app.router.add_post("/api/chats/{who}/text", self.send_text)
        app.router.add_post("/api/chats/{who}/upload", self.upload)
        app.router.add_post("/api/chats/{who}/press", self.press)

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Page requests only: a loopback Host (no DNS rebinding), the page's own header on POSTs, JSON errors."""
        if request.path.startswith(("/bot", "/file/bot")):
            return await handler(request)
        try:
            if self.allowed_hosts is not None and request.url.host not in self.allowed_hosts:
                raise PageError(403, f"this sandbox answers only on {', '.join(sorted(self.allowed_hosts))}")
            if request.method == "POST" and request.headers.get(CLIENT_HEADER) != "1":
                raise PageError(403, f"POST requests need the {CLIENT_HEADER} header the page sends")
            response = await handler(request)
        except PageError as exc:
            response = web.json_response({"error": str(exc)}, status=exc.status)
        except web.HTTPException as exc:
            response = web.json_response({"error": exc.reason}, status=exc.status)
        response.headers.update(SECURITY_HEADERS)
        return response

    # -- files ---------------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._listed(self.static, "index.html")

    async def static_file(self, request: web.Request) -> web.StreamResponse:
        return self._listed(self.static, request.match_info["name"])

    async def sample(self, request: web.Request) -> web.StreamResponse:
        return self._listed(self.samples, request.match_info["name"])

    def _listed(self, files: dict[str, Path], name: str) -> web.StreamResponse:
        path = files.get(name)
        if path is None:
            raise PageError(404, "no such file")
        data = path.read_bytes()
        content_type = STATIC_TYPES.get(path.suffix) or IMAGE_TYPES.get(image_format(data) or "")
        charset = "utf-8" if path.suffix in STATIC_TYPES else None
        return web.Response(body=data, content_type=content_type or "application/octet-stream", charset=charset)

    async def file(self, request: web.Request) -> web.StreamResponse:
        """A photo or file someone sent in the chat, by the opaque id the server gave it."""
        stored = self.server.files.get(request.match_info["file_id"])
        if stored is None:
            raise PageError(404, "no such file")
        content_type = IMAGE_TYPES.get(image_format(stored.data) or "")
        if content_type:
            return web.Response(body=stored.data, content_type=content_type)
        return web.Response(
            body=stored.data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": "attachment"},
        )

    # -- state and updates ---------------------------------------------------------------------------

    async def state(self, request: web.Request) -> web.StreamResponse:
        """Who is who, the bot's command menu and the samples: what the page needs to draw itself."""
        return web.json_response(
            {
                "bot": {"name": self.server.bot_user["first_name"], "username": self.server.bot_user["username"]},
                "people": [asdict(p) for p in PEOPLE],
                "commands": self.server.commands,
                "admin_commands": ADMIN_COMMANDS,
                "samples": [{"name": n, "style": n.split("-")[0], "url": f"/samples/{n}"} for n in self.samples],
                "max_upload_bytes": self.max_upload_bytes,
                "rev": self.server.revision,
            }
        )

    async def updates(self, request: web.Request) -> web.StreamResponse:
        """Messages created or edited after revision `after`; waits up to `wait` seconds for one (long poll)."""
        after = _query_number(request, "after", 0)
        wait = min(_query_number(request, "wait", POLL_SECONDS), POLL_SECONDS)
        server = self.server
        with contextlib.suppress(TimeoutError):
            await server.wait_until(lambda: server.revision > after or server.closing, timeout=wait, what="news")
        messages = [
            {"chat": key, "message": message_view(m)}
            for key, chat in self.chats.items()
            for m in server.changed_messages(chat.chat_id, after)
        ]
        return web.json_response({"rev": server.revision, "messages": messages})

    # -- what people do ------------------------------------------------------------------------------

    def _chat(self, request: web.Request) -> UserChat:
        chat = self.chats.get(request.match_info["who"])
        if chat is None:
            raise PageError(404, f"no such person: {request.match_info['who']!r}")
        return chat

    def _message(self, chat: UserChat, message_id: Any) -> dict:
        if not isinstance(message_id, int):
            raise PageError(400, "message_id must be a number")
        message = self.server.messages.get((chat.chat_id, message_id))
        if message is None:
            raise PageError(404, f"no message {message_id} in this chat")
        return message

    async def send_text(self, request: web.Request) -> web.StreamResponse:
        """A text message or a /command, optionally as a reply to an earlier message."""
        chat = self._chat(request)
        body = await _json_object(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PageError(400, "type a message first")
        if len(text) > MAX_TEXT:
            raise PageError(400, f"a message holds at most {MAX_TEXT} characters")
        reply_to = self._message(chat, body["reply_to"]) if body.get("reply_to") is not None else None
        return web.json_response({"message": message_view(chat.send_text(text, reply_to))})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """A multipart `file`: images go as photos (as Telegram apps send them), anything else as a document."""
        chat = self._chat(request)
        limit = self.max_upload_bytes
        if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
            raise self._too_big(request.content_length)
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError):
            raise PageError(400, "send the file as multipart/form-data") from None
        part = await reader.next()
        while part is not None and (not isinstance(part, BodyPartReader) or part.name != "file"):
            await part.release()
            part = await reader.next()
        if part is None:
            raise PageError(400, "no file in the upload")
        data = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            data += chunk
            if len(data) > limit:
                raise self._too_big(len(data))
        if not data:
            raise PageError(400, "the file is empty")
        name = Path(part.filename or "file").name[:100] or "file"
        if image_format(bytes(data)) in IMAGE_TYPES:
            message = chat.send_photo(bytes(data))
        else:
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            message = chat.send_document(bytes(data), name, content_type)
        return web.json_response({"message": message_view(message)})

    def _too_big(self, size: int) -> PageError:
        return PageError(
            413, f"that file is {size / 2**20:.1f} MB; the bot takes files up to {self.max_upload_bytes // 2**20} MB"
        )

    async def press(self, request: web.Request) -> web.StreamResponse:
        """Tap an inline button the bot put under its message; answers with the bot's callback answer."""
        chat = self._chat(request)
        body = await _json_object(request)
        message = self._message(chat, body.get("message_id"))
        data = body.get("data")
        buttons = [b.get("callback_data") for row in message_view(message)["buttons"] for b in row]
        if not isinstance(data, str) or data not in buttons:
            raise PageError(400, "that message has no such button")
        query_id = chat.press(message, data)
        try:
            answer = await chat.answer(query_id, ANSWER_SECONDS)
        except TimeoutError:
            return web.json_response({"answered": False, "text": "", "show_alert": False})
        return web.json_response(
            {"answered": True, "text": str(answer.get("text") or ""), "show_alert": flag(answer, "show_alert")}
        )


def message_view(message: dict) -> dict:
    """What the page draws of a Telegram message: text or caption, the largest photo, buttons, reply."""
    reply = message.get("reply_to_message")
    photo = message.get("photo")
    document = message.get("document")
    markup = message.get("reply_markup") or {}
    return {
        "id": message["message_id"],
        "from_bot": bool(message["from"].get("is_bot")),
        "date": message["date"],
        "edited": "edit_date" in message,
        "text": message.get("text") or message.get("caption") or "",
        "photo": photo[-1]["file_id"] if photo else None,
        "document": document.get("file_name") if document else None,
        "buttons": markup.get("inline_keyboard", []),
        "reply_to": {"id": reply["message_id"], "text": (reply.get("text") or reply.get("caption") or "")[:80]}
        if reply
        else None,
    }


def _query_number(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise PageError(400, f"{name} must be a number") from None
    if value < 0:
        raise PageError(400, f"{name} must not be negative")
    return value


async def _json_object(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise PageError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise PageError(400, "the body must be a JSON object")
    return body
