"""Subcommands of the bot: bot, sandbox."""

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register this part's subcommands."""
    parser = sub.add_parser(
        "bot",
        help="run the Telegram bot",
        description="Run the Telegram bot until SIGINT/SIGTERM. Settings come from the environment and "
        ".env: TELEGRAM_TOKEN (required), TELEGRAM_API_BASE, TELEGRAM_FILE_API_BASE, BOT_ADMIN_IDS, "
        "CALLIGRAPHY_HOME, CALLIGRAPHY_DB_URL, BOT_LOW_CONFIDENCE, BOT_PHOTOS_PER_MINUTE, "
        "BOT_RELOAD_SECONDS, BOT_WEBHOOK_URL, BOT_WEBHOOK_SECRET, BOT_WEBHOOK_PORT, BOT_WEBHOOK_LISTEN.",
    )
    parser.set_defaults(func=run_bot)


def run_bot(args: argparse.Namespace) -> int:
    from telegram.error import InvalidToken, NetworkError

    from bot.app import run
    from bot.config import Settings
    from calligraphy.errors import UsageError

    settings = Settings.from_env()
    try:
        run(settings)
    except InvalidToken:
        raise UsageError(f"TELEGRAM_TOKEN was refused by the Bot API server at {settings.api_base}") from None
    except NetworkError as exc:
        raise UsageError(f"cannot reach the Bot API server at {settings.api_base}: {exc}") from None
    return 0
