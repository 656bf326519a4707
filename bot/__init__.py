"""Telegram bot: photos in, style probabilities out. Serves the model store's current model; never imports the trainer."""
