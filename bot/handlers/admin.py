"""Commands for the people in BOT_ADMIN_IDS: status, relabeling low-confidence images, retrain, rollback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.db import ADMIN
from bot.services import services
from model_store.metadata import ModelError
from model_store.store import StoreError

log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def admin_only(handler: Handler) -> Handler:
    """Refuse, politely and on the record, anyone not in BOT_ADMIN_IDS."""

    @functools.wraps(handler)
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is None or user.id not in services(context).settings.admin_ids:
            what = update.callback_query.data if update.callback_query else update.effective_message.text
            log.warning("refused admin action %r from user %s", what, user.id if user else None)
            if update.callback_query:
                await update.callback_query.answer(replies.NOT_ADMIN, show_alert=True)
            else:
                await update.effective_message.reply_text(replies.NOT_ADMIN)
            return
        await handler(update, context)

    return guarded


@admin_only
async def on_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status: the model served, its metrics, and what people have sent and labelled."""
    svc = services(context)
    stats = await svc.stored(svc.db.stats)
    retrain = svc.retrainer.status() if svc.retrainer else None
    text = replies.status_text(
        svc.classifier.version,
        svc.classifier.metadata.get("metrics", {}),
        stats,
        timedelta(seconds=round(svc.uptime_s)),
        retrain,
    )
    await update.effective_message.reply_text(text)


@admin_only
async def on_relabel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/relabel: show the oldest low-confidence image nobody has labelled yet."""
    await _send_next_pending(update.effective_chat.id, context)


@admin_only
async def on_relabel_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A style (or skip) tapped under a /relabel image: record it, then show the next image."""
    query = update.callback_query
    svc = services(context)
    callback = replies.parse_callback(query.data)
    record = await svc.stored(svc.db.get, callback.prediction_id) if callback else None
    if (
        record is None
        or not record.low_confidence
        or (callback.index is not None and callback.index >= len(record.classes))
    ):
        log.info("admin %s pressed a stale or forged relabel button: %r", query.from_user.id, query.data)
        await query.answer(replies.STALE_BUTTON)
        return
    if callback.index is None:
        await svc.stored(svc.db.skip, record.id)
        outcome = f"#{record.id} skipped."
    else:
        label = record.classes[callback.index]
        await svc.stored(svc.db.set_label, record.id, label, query.from_user.id, ADMIN)
        log.info("prediction %d relabelled %s by admin %s", record.id, label, query.from_user.id)
        outcome = f"#{record.id} labelled {replies.style_name(label)}."
    await query.answer(outcome)
    await query.edit_message_caption(outcome)
    await _send_next_pending(query.message.chat.id, context)


async def _send_next_pending(chat_id: int, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    record = await svc.stored(svc.db.next_pending)
    if record is None or record.image is None:
        await context.bot.send_message(chat_id, replies.NO_PENDING)
        return
    with svc.images.path(record.image).open("rb") as image:
        await context.bot.send_photo(
            chat_id,
            image,
            caption=replies.relabel_caption(record),
            reply_markup=replies.relabel_keyboard(record),
        )


@admin_only
async def on_retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/retrain starts a run now (and answers at once); /retrain status shows how the run is going."""
    retrainer = services(context).retrainer
    args = [a.lower() for a in context.args or []]
    if retrainer is None:
        reply = replies.RETRAIN_NOT_CONFIGURED
    elif args == ["status"]:
        reply = retrainer.status() or replies.NO_RETRAIN_RUNS
    elif args:
        reply = replies.RETRAIN_USAGE
    else:
        reply = await retrainer.start(update.effective_user.id)
    await update.effective_message.reply_text(reply)


@admin_only
async def on_rollback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/rollback: serve the previously promoted model version again."""
    svc = services(context)
    try:
        target = await svc.stored(svc.store.rollback)
        served = await svc.stored(svc.classifier.reload)
    except (StoreError, ModelError) as exc:
        await update.effective_message.reply_text(f"Cannot roll back: {exc}")
        return
    log.warning("admin %s rolled the model back to %s", update.effective_user.id, target)
    await update.effective_message.reply_text(f"Rolled back to {target}. Now serving {served}.")
