"""Requests to Telegram that survive flood limits and dropped connections instead of losing a reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot
from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 3
BACKOFF_S = 0.5


async def retry_network(call: Callable[[], Awaitable[T]], what: str) -> T:
    """Await `call()`, retrying timeouts, connection errors and 5xx; a 400 is final and raised at once."""
    for attempt in range(1, ATTEMPTS):
        try:
            return await call()
        except BadRequest:
            raise
        except NetworkError as exc:
            log.warning("%s failed (%s); retry %d of %d", what, exc, attempt, ATTEMPTS - 1)
            await asyncio.sleep(BACKOFF_S * attempt)
    return await call()


class RetryingRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (Telegram's flood limits, waits out RetryAfter) plus network retries."""

    async def process_request(
        self,
        callback: Callable[..., Any],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        limited = super().process_request
        return await retry_network(lambda: limited(callback, args, kwargs, endpoint, data, rate_limit_args), endpoint)


async def download(bot: Bot, file_id: str) -> bytes:
    """The file's bytes through getFile and the file API, with the same network retries."""

    async def fetch() -> bytes:
        tg_file = await bot.get_file(file_id)
        return bytes(await tg_file.download_as_bytearray())

    return await retry_network(fetch, "download")
