"""Help texts, and a short hint for anything the bot cannot use, so nobody is met with silence."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.services import services


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what to send and which styles the model knows."""
    await update.effective_message.reply_text(replies.help_text(services(context).classifier.classes))


async def on_styles(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/styles: a short description of each style."""
    await update.effective_message.reply_text(replies.styles_text(services(context).classifier.classes))


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have."""
    await update.effective_message.reply_text(replies.UNKNOWN_COMMAND)


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text, stickers, voice, non-image files: point to what works."""
    await update.effective_message.reply_text(replies.NOT_AN_IMAGE_HINT)
