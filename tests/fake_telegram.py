"""The tests' names for the sandbox's local Bot API server, which started here (sandbox/telegram_api.py)."""

from sandbox.telegram_api import TelegramServer as FakeTelegram
from sandbox.telegram_api import UserChat as FakeChat

__all__ = ["FakeChat", "FakeTelegram"]
