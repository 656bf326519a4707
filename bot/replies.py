"""What the bot says and which buttons it shows; plain text, so no user-supplied name can break markup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.db import PredictionRecord, Stats

SURE = 0.85
BAR_WIDTH = 10
CALLBACK_MAX_BYTES = 64


@dataclass(frozen=True)
class Style:
    chinese: str
    pinyin: str
    english: str
    about: str


STYLES = {
    "kaishu": Style(
        "楷书",
        "kaishu",
        "regular",
        "the standard script since the Tang dynasty: separate, carefully finished strokes in a square frame.",
    ),
    "lishu": Style(
        "隶书",
        "lishu",
        "clerical",
        "the Han dynasty's official script: wide, flat characters with flaring 'silkworm head, swallow tail' "
        "horizontals.",
    ),
    "xiaozhuan": Style(
        "小篆",
        "xiaozhuan",
        "small seal",
        "the Qin dynasty's unified script: tall, symmetric characters drawn with even, rounded lines.",
    ),
}

HELP = (
    "Send me a photo of Chinese calligraphy (or an image file) and I will tell you its style:\n"
    "{styles}\n\n"
    "Photograph a few characters, straight on and in good light. Under each answer, tap the right style "
    "if I got it wrong: it helps me learn.\n\n"
    "/styles what the styles look like\n"
    "/feedback STYLE reply with this to one of my answers to correct it\n"
    "/help this message"
)
NOT_AN_IMAGE_HINT = "I only read images. Send a photo of calligraphy (or an image file); /help explains more."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
TOO_MANY_PHOTOS = "That is a lot of photos at once. Please wait a minute, then send the next one."
FILE_TOO_BIG = "That file is over Telegram's 20 MB download limit. Please send a smaller image."
DOWNLOAD_FAILED = "I could not download that file. Please try sending it again."
NOT_ADMIN = "Sorry, that command is for the bot's administrators."
RETRAIN_NOT_CONFIGURED = "Training is not configured for this bot: set CALLIGRAPHY_BASE_DATA."
RETRAIN_USAGE = "/retrain starts a retraining run now; /retrain status shows how it is going."
NO_RETRAIN_RUNS = "No retraining run yet: /retrain starts one."
NO_PENDING = "No low-confidence images are waiting for a label."
STALE_BUTTON = "This button is no longer valid."
NOT_YOUR_PHOTO = "Only the person who sent this photo can answer for it."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."
FEEDBACK_USAGE = (
    "Reply to one of my answers with /feedback STYLE, or send /feedback ANSWER_NUMBER STYLE "
    "(the number is shown as # under each answer)."
)


def style_name(label: str) -> str:
    """'隶书 lishu (clerical)'; a class the bot has no name for is shown as it is."""
    style = STYLES.get(label)
    return f"{style.chinese} {style.pinyin} ({style.english})" if style else label


def short_name(label: str) -> str:
    style = STYLES.get(label)
    return f"{style.chinese} {style.pinyin}" if style else label


def help_text(classes: list[str]) -> str:
    return HELP.format(styles="\n".join(f"• {style_name(c)}" for c in classes))


def styles_text(classes: list[str]) -> str:
    lines = [f"{style_name(c)}: {STYLES[c].about}" if c in STYLES else c for c in classes]
    return "\n\n".join(lines)


def band(confidence: float, low: float) -> str:
    """'sure', 'likely' or 'unsure'; below the low-confidence threshold is always unsure."""
    if confidence < low:
        return "unsure"
    return "sure" if confidence >= max(SURE, low) else "likely"


def bar(p: float) -> str:
    filled = round(p * BAR_WIDTH)
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def prediction_text(record: PredictionRecord, low: float) -> str:
    top = style_name(record.label)
    confidence = band(record.confidence, low)
    headline = {
        "sure": f"This is {top}.",
        "likely": f"This is probably {top}.",
        "unsure": f"I'm not sure. Perhaps {top}?",
    }[confidence]
    rows = sorted(record.probs.items(), key=lambda kv: -kv[1])
    lines = [headline, ""] + [f"{bar(p)} {p:4.0%} {style_name(c)}" for c, p in rows]
    if confidence == "unsure":
        lines += ["", "Please tap the right style below: your answer helps me learn."]
    lines += ["", f"#{record.id} · model {record.model_version}"]
    if record.label_given:
        lines.append(f"Your answer: {style_name(record.label_given)}. Thank you!")
    return "\n".join(lines)


def feedback_keyboard(record: PredictionRecord) -> InlineKeyboardMarkup:
    """'✓ correct' for the predicted style and one button per other style; the recorded answer is marked."""

    def button(index: int, label: str) -> InlineKeyboardButton:
        text = "✓ correct" if label == record.label else short_name(label)
        if label == record.label_given:
            text = f"• {text} •"
        return InlineKeyboardButton(text, callback_data=callback_data("fb", record.id, index))

    labels = list(enumerate(record.classes))
    correct = [button(i, c) for i, c in labels if c == record.label]
    others = [button(i, c) for i, c in labels if c != record.label]
    return InlineKeyboardMarkup([correct, others])


def relabel_caption(record: PredictionRecord) -> str:
    guesses = ", ".join(f"{short_name(c)} {p:.0%}" for c, p in record.probs.items())
    return f"Low-confidence #{record.id} (model {record.model_version}): {guesses}. Which style is it?"


def relabel_keyboard(record: PredictionRecord) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(short_name(c), callback_data=callback_data("rl", record.id, i))
        for i, c in enumerate(record.classes)
    ]
    skip = InlineKeyboardButton("skip", callback_data=f"rl:{record.id}:skip")
    return InlineKeyboardMarkup([buttons, [skip]])


def unknown_style(name: str, classes: list[str]) -> str:
    return f"I don't know the style {name!r}. Valid styles: " + ", ".join(short_name(c) for c in classes)


def status_text(version: str, metrics: dict, stats: Stats, uptime: timedelta, retrain: str | None) -> str:
    # The runtime's own figure (inference crops included) is what users get; older models only have the trainer's.
    accuracy = metrics.get("runtime_accuracy", metrics.get("accuracy"))
    quality = (
        f", accuracy {accuracy:.1%} ({metrics.get('split', 'validation')} split)"
        if isinstance(accuracy, int | float)
        else ""
    )
    corrected = stats.labeled_by_users - stats.confirmed_by_users
    lines = [
        f"Model: {version}{quality}",
        f"Predictions today: {stats.predictions_today} (total {stats.predictions_total})",
        f"Low-confidence images waiting for a label: {stats.pending_relabel}",
        f"Feedback from users: {stats.labeled_by_users} ({stats.confirmed_by_users} confirmed, {corrected} corrected)",
        f"Labelled by admins: {stats.labeled_by_admins}",
        f"Uptime: {str(uptime).split('.')[0]}",
    ]
    if retrain:
        lines.append(f"Retraining: {retrain}")
    return "\n".join(lines)


def callback_data(kind: str, prediction_id: int, index: int) -> str:
    data = f"{kind}:{prediction_id}:{index}"
    if len(data.encode()) > CALLBACK_MAX_BYTES:
        raise ValueError(f"callback data over {CALLBACK_MAX_BYTES} bytes: {data!r}")
    return data


@dataclass(frozen=True)
class Callback:
    kind: str  # "fb" (a user's feedback) or "rl" (an admin's relabel)
    prediction_id: int
    index: int | None  # class index; None means skip (relabel only)


_CALLBACK = re.compile(r"(fb|rl):([1-9][0-9]{0,17}):(0|[1-9][0-9]?|skip)")


def parse_callback(data: str | None) -> Callback | None:
    """The button's meaning, or None for anything the bot did not send (forged, truncated, old format)."""
    match = _CALLBACK.fullmatch(data or "")
    if not match:
        return None
    kind, prediction_id, index = match.groups()
    if index == "skip":
        return Callback(kind, int(prediction_id), None) if kind == "rl" else None
    return Callback(kind, int(prediction_id), int(index))


def resolve_style(name: str, classes: list[str]) -> str | None:
    """The class a person means by 'lishu', '隶书', 'Clerical' or 'clerical script'."""
    wanted = name.strip().lower().removesuffix(" script")
    for label in classes:
        style = STYLES.get(label)
        aliases = {label.lower()}
        if style:
            aliases |= {style.chinese, style.pinyin, style.english, style.english.replace(" ", "")}
        if wanted in aliases or wanted.replace(" ", "") in aliases:
            return label
    return None
