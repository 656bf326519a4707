"""Photos and image files in, the style probabilities and feedback buttons out."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import ContextTypes

from bot import replies
from bot.db import NewPrediction
from bot.network import download
from bot.services import services
from model_store.images import MAX_BYTES, ImageError

log = logging.getLogger(__name__)


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo: classify its largest size."""
    photo = update.effective_message.photo[-1]
    await classify(update, context, photo.file_id, photo.file_unique_id, photo.file_size)


async def on_image_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An image sent as a file (uncompressed): classify it as it is."""
    document = update.effective_message.document
    await classify(update, context, document.file_id, document.file_unique_id, document.file_size)


async def classify(
    update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str, unique_id: str, size: int | None
) -> None:
    """Download, classify off the event loop, store, then answer; every failure gets a friendly reply."""
    svc = services(context)
    message, user = update.effective_message, update.effective_user
    if not svc.limiter.allow(user.id):
        log.info("user %s is over the photo rate limit", user.id)
        await message.reply_text(replies.TOO_MANY_PHOTOS)
        return
    if size and size > MAX_BYTES:
        await message.reply_text(replies.FILE_TOO_BIG)
        return
    try:
        data = await download(context.bot, file_id)
    except BadRequest as exc:
        too_big = "too big" in exc.message.lower()
        log.info("user %s: getFile refused (%s)", user.id, exc.message)
        await message.reply_text(replies.FILE_TOO_BIG if too_big else replies.DOWNLOAD_FAILED)
        return
    except NetworkError as exc:
        log.warning("user %s: download failed: %s", user.id, exc)
        await message.reply_text(replies.DOWNLOAD_FAILED)
        return
    try:
        prediction = await svc.predict(data)
    except ImageError as exc:
        log.info("user %s sent an unusable image: %s", user.id, exc)
        await message.reply_text(f"{exc} Please send a photo of calligraphy.")
        return
    low = prediction.confidence < svc.settings.low_confidence
    new = NewPrediction(
        user_id=user.id,
        chat_id=message.chat_id,
        file_id=file_id,
        file_unique_id=unique_id,
        model_version=prediction.version,
        probs=prediction.probs,
        low_confidence=low,
    )
    record = await svc.stored(svc.save_prediction, new, data if low else None)
    sent = await message.reply_text(
        replies.prediction_text(record, svc.settings.low_confidence),
        reply_markup=replies.feedback_keyboard(record),
    )
    await svc.stored(svc.db.set_reply_message, record.id, sent.message_id)
