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
    from bot.app import run
    from bot.config import Settings

    run(Settings.from_env())
    return 0
