"""Build the Application and wire every handler, top to bottom; `run` serves it by long polling or webhook."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC
from urllib.parse import urlparse

from apscheduler.triggers.cron import CronTrigger
from telegram import Bot, BotCommand, Update
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import replies
from bot.config import Settings
from bot.handlers import admin, feedback, info, predict
from bot.network import RetryingRateLimiter
from bot.redact import redact_token_everywhere
from bot.retrain import Retrainer
from bot.services import SERVICES_KEY, Services, services
from calligraphy.errors import UsageError

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
COMMANDS = [
    BotCommand("help", "what to send and which styles I know"),
    BotCommand("styles", "what each style looks like"),
    BotCommand("feedback", "correct one of my answers: reply with /feedback STYLE"),
]
RATE_LIMIT_RETRIES = 3
RETRAIN_JOB = "retrain"


def build_application(svc: Services) -> Application:
    """An Application on the configured Bot API server, with every handler and the model reload job."""
    settings = svc.settings
    app = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.api_base)
        .base_file_url(settings.file_api_base)
        .concurrent_updates(True)
        .rate_limiter(RetryingRateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    app.bot_data[SERVICES_KEY] = svc
    private = filters.ChatType.PRIVATE

    app.add_handler(CommandHandler(["start", "help"], info.on_help))
    app.add_handler(CommandHandler("styles", info.on_styles))
    app.add_handler(CommandHandler("feedback", feedback.on_feedback_command))
    app.add_handler(CommandHandler("status", admin.on_status))
    app.add_handler(CommandHandler("relabel", admin.on_relabel))
    app.add_handler(CommandHandler("retrain", admin.on_retrain))
    app.add_handler(CommandHandler("rollback", admin.on_rollback))
    app.add_handler(MessageHandler(filters.PHOTO, predict.on_photo))
    app.add_handler(MessageHandler(filters.Document.IMAGE, predict.on_image_document))
    # In groups, other messages and other bots' commands are not for us.
    app.add_handler(MessageHandler(private & filters.COMMAND, info.on_unknown_command))
    app.add_handler(MessageHandler(private, info.on_other))
    # Feedback buttons, and anything forged or empty (which the feedback handler answers as stale).
    app.add_handler(CallbackQueryHandler(feedback.on_feedback_button, pattern=r"^(?!rl:)"))
    app.add_handler(CallbackQueryHandler(admin.on_relabel_button, pattern=r"^rl:"))
    app.add_error_handler(on_error)
    app.job_queue.run_repeating(reload_model, interval=settings.reload_seconds, first=settings.reload_seconds)
    if settings.base_data is not None:
        svc.retrainer = Retrainer(svc, app.bot)
        if settings.retrain_cron:
            trigger = CronTrigger.from_crontab(settings.retrain_cron, timezone=UTC)
            app.job_queue.run_custom(svc.retrainer.on_schedule, job_kwargs={"trigger": trigger}, name=RETRAIN_JOB)
    return app


async def reload_model(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pick up a version promoted from the command line (or by retraining) without a restart."""
    svc = services(context)
    await svc.stored(svc.classifier.reload)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure with its traceback; tell the user something went wrong instead of staying silent."""
    update_id = getattr(update, "update_id", None)
    if isinstance(context.error, Forbidden):
        # The user blocked the bot or left the chat: routine, and there is nobody to tell.
        log.warning("update %s: %s", update_id, context.error.message)
        return
    log.error("update %s failed", update_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query:
            await update.callback_query.answer(replies.INTERNAL_ERROR)
        elif update.effective_message:
            await update.effective_message.reply_text(replies.INTERNAL_ERROR)
    except TelegramError as exc:
        log.warning("could not tell the user about the failure: %s", exc)


async def _post_init(app: Application) -> None:
    svc = services_of(app)
    log.info("@%s is serving model %s", app.bot.username, svc.classifier.version)
    try:
        await app.bot.set_my_commands(COMMANDS)
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)
    if svc.retrainer is not None:
        await svc.retrainer.recover()


async def _post_shutdown(app: Application) -> None:
    svc = services_of(app)
    if svc.retrainer is not None:
        await svc.retrainer.close()
    svc.close()


def services_of(app: Application) -> Services:
    return app.bot_data[SERVICES_KEY]


async def check_server(settings: Settings) -> None:
    """Fail in one line on a refused token or an unreachable server (PTB would log a traceback first)."""
    try:
        async with Bot(settings.token, base_url=settings.api_base, base_file_url=settings.file_api_base):
            pass
    except InvalidToken:
        raise UsageError(f"TELEGRAM_TOKEN was refused by the Bot API server at {settings.api_base}") from None
    except NetworkError as exc:
        raise UsageError(f"cannot reach the Bot API server at {settings.api_base}: {exc}") from None


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM: a webhook when BOT_WEBHOOK_URL is set, long polling otherwise."""
    redact_token_everywhere(settings.token)
    # httpx logs every request at INFO: noise, one line per Bot API call.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(check_server(settings))
    app = build_application(Services.open(settings))
    if settings.webhook_url:
        app.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlparse(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret,
            allowed_updates=ALLOWED_UPDATES,
        )
    else:
        app.run_polling(allowed_updates=ALLOWED_UPDATES)
