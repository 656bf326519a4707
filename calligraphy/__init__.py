"""The `calligraphy` command: a thin dispatcher over the trainer, the model store and the bot."""
