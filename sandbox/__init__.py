"""The offline sandbox: a local Bot API server and a chat page, so the real bot runs without Telegram."""
