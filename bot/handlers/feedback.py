"""The sender's verdict on a prediction, by button or by /feedback: both record the same thing."""

from __future__ import annotations

import logging
import re

from telegram import Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import replies
from bot.db import USER, PredictionRecord
from bot.network import download
from bot.services import Services, services

log = logging.getLogger(__name__)

_PREDICTION_ID = re.compile(r"#?[0-9]{1,18}")


async def on_feedback_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A tap on '✓ correct' or on another style under a prediction."""
    query = update.callback_query
    callback = replies.parse_callback(query.data)
    svc = services(context)
    is_feedback = callback is not None and callback.kind == "fb"
    record = await svc.stored(svc.db.get, callback.prediction_id) if is_feedback else None
    if record is None or callback.index is None or callback.index >= len(record.classes):
        log.info("user %s pressed a stale or forged button: %r", query.from_user.id, query.data)
        await query.answer(replies.STALE_BUTTON)
        return
    if record.user_id != query.from_user.id:
        await query.answer(replies.NOT_YOUR_PHOTO, show_alert=True)
        return
    label = record.classes[callback.index]
    updated = await _record(svc, record, label)
    await query.answer(_thanks(label))
    if updated:
        await _show_answer(context, svc, updated)


async def on_feedback_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/feedback STYLE as a reply to a prediction, or /feedback PREDICTION_ID STYLE."""
    message, user = update.effective_message, update.effective_user
    svc = services(context)
    args = list(context.args or [])
    record = None
    if message.reply_to_message and args:
        record = await svc.stored(svc.db.find_by_reply, message.chat_id, message.reply_to_message.message_id)
    elif len(args) >= 2 and _PREDICTION_ID.fullmatch(args[0]):
        record = await svc.stored(svc.db.get, int(args.pop(0).lstrip("#")))
    else:
        await message.reply_text(replies.FEEDBACK_USAGE)
        return
    if record is None:
        await message.reply_text(f"I can't find that answer of mine. {replies.FEEDBACK_USAGE}")
        return
    if record.user_id != user.id:
        await message.reply_text(replies.NOT_YOUR_PHOTO)
        return
    label = replies.resolve_style(" ".join(args), record.classes)
    if label is None:
        await message.reply_text(replies.unknown_style(" ".join(args), record.classes))
        return
    updated = await _record(svc, record, label)
    await message.reply_text(_thanks(label))
    if updated:
        await _show_answer(context, svc, updated)


async def _record(svc: Services, record: PredictionRecord, label: str) -> PredictionRecord | None:
    """Store the sender's label; None when it was their answer already."""
    if record.label_given == label and record.label_source == USER:
        return None
    updated = await svc.stored(svc.db.set_label, record.id, label, record.user_id, USER)
    log.info("prediction %d: user says %s (model said %s)", record.id, label, record.label)
    return updated


def _thanks(label: str) -> str:
    return f"Recorded: {replies.style_name(label)}. Thank you!"


async def _show_answer(context: ContextTypes.DEFAULT_TYPE, svc: Services, record: PredictionRecord) -> None:
    """Mark the answer on the prediction message, and keep the image for retraining."""
    if record.reply_message_id is not None:
        try:
            await context.bot.edit_message_text(
                replies.prediction_text(record, svc.settings.low_confidence),
                chat_id=record.chat_id,
                message_id=record.reply_message_id,
                reply_markup=replies.feedback_keyboard(record),
            )
        except BadRequest as exc:
            # "message is not modified" (the same answer twice) or a message the user deleted.
            log.info("prediction %d: message not edited: %s", record.id, exc.message)
    if record.image is None:
        try:
            await svc.stored(svc.keep_image, record.id, await download(context.bot, record.file_id))
        except TelegramError as exc:
            log.warning("prediction %d: could not keep the image: %s", record.id, exc)
