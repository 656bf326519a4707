"""One small async function per command, message kind or button; bot/app.py wires them."""
