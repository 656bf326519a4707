"""Telegram bot: photos in, style probabilities out, from the model store's current model; no trainer."""
