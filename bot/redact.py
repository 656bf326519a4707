"""Keep the bot token out of every log line: PTB logs its API URLs, and those contain the token."""

from __future__ import annotations

import logging

MASK = "<TOKEN>"


class RedactToken(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, MASK), ()
        # Formatters cache the traceback text on the record; fill that cache with the redacted text.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, MASK)
        return True


def redact_token_everywhere(token: str) -> None:
    """Filter every handler of the root logger (where all records end up)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(token))
