"""Subcommands of the bot: bot, training-set."""

import argparse
from pathlib import Path

from calligraphy.errors import UsageError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register this part's subcommands."""
    parser = sub.add_parser(
        "bot",
        help="run the Telegram bot",
        description="Run the Telegram bot until SIGINT/SIGTERM. Settings come from the environment and "
        ".env: TELEGRAM_TOKEN (required), TELEGRAM_API_BASE, TELEGRAM_FILE_API_BASE, BOT_ADMIN_IDS, "
        "CALLIGRAPHY_HOME, CALLIGRAPHY_DB_URL, BOT_LOW_CONFIDENCE, BOT_PHOTOS_PER_MINUTE, "
        "BOT_RELOAD_SECONDS, BOT_WEBHOOK_URL, BOT_WEBHOOK_SECRET, BOT_WEBHOOK_PORT, BOT_WEBHOOK_LISTEN; "
        "retraining: CALLIGRAPHY_BASE_DATA, CALLIGRAPHY_EVAL_DATA, BOT_RETRAIN_ARGS, BOT_RETRAIN_CRON, "
        "BOT_RETRAIN_MIN_NEW, BOT_RETRAIN_MARGIN (deploy/.env.example describes each).",
    )
    parser.set_defaults(func=run_bot)

    export = sub.add_parser(
        "training-set",
        help="export what /retrain would train on, to train on another machine",
        description="Write OUT/train (the base data plus the images people labelled, a folder per class) "
        "and, unless CALLIGRAPHY_EVAL_DATA is set, OUT/eval (the served model's validation files), with the "
        "bot's settings. Train with `calligraphy train --data OUT/train`, compare with `calligraphy evaluate`.",
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="a directory that does not exist")
    export.set_defaults(func=run_training_set)


def run_bot(args: argparse.Namespace) -> int:
    from bot.app import run
    from bot.config import Settings

    run(Settings.from_env())
    return 0


def run_training_set(args: argparse.Namespace) -> int:
    """The retraining job's export, by hand: for a bot host without the trainer or a GPU."""
    from bot.config import Settings
    from bot.db import Database
    from bot.eval_set import EvalSetError, fixed_eval_set
    from bot.image_store import ImageStore
    from bot.training_set import export_training_set
    from model_store.metadata import ModelError
    from model_store.store import ModelStore, StoreError

    settings = Settings.from_env()
    if settings.base_data is None:
        raise UsageError("CALLIGRAPHY_BASE_DATA is not set: name the base dataset, a folder per class")
    if not settings.home.is_dir():
        raise UsageError(f"CALLIGRAPHY_HOME {settings.home} does not exist: run this where the bot keeps its data")
    if args.out.exists():
        raise UsageError(f"{args.out} already exists: give a new directory")
    images = ImageStore(settings.images_dir)
    db = Database(settings.db_url)
    try:
        eval_set = fixed_eval_set(settings, ModelStore(settings.models_dir), images, args.out / "eval")
        summary = export_training_set(
            settings.base_data, db.labels(), images, args.out / "train", set(eval_set.digests)
        )
    except (EvalSetError, StoreError, ModelError) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        db.close()
    print(f"training set: {args.out / 'train'}: {summary.line()}")
    print(f"evaluation set: {eval_set.root}: {eval_set.n} images ({eval_set.source})")
    return 0
