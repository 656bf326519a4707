"""Subcommand of the sandbox: sandbox (the bot in a local chat page, without Telegram)."""

import argparse
from pathlib import Path

from calligraphy.errors import UsageError

DEFAULT_PORT = 8765


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError("must be 0 (any free port) to 65535")
    return port


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register this part's subcommands."""
    parser = sub.add_parser(
        "sandbox",
        help="chat with the bot in a local web page, without Telegram",
        description="Start a local Bot API server with a chat page, and the bot against it: try the bot in a "
        "browser with no Telegram account, token or internet. Ctrl-C stops both.",
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free port")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--unsafe-listen",
        action="store_true",
        help="allow a --host other than loopback: anyone who reaches it can chat and act as admin",
    )
    parser.add_argument(
        "--home", type=Path, default=Path("var/sandbox"), help="the sandbox bot's data (default var/sandbox)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="a `calligraphy train` output to serve (added to the sandbox's store and promoted); default: the "
        "sandbox's current version, else the packaged default model",
    )
    parser.add_argument("--no-browser", action="store_true", help="print the page's address, do not open it")
    parser.set_defaults(func=run_sandbox)


def run_sandbox(args: argparse.Namespace) -> int:
    from sandbox.run import SandboxConfig, run

    if args.home.exists() and not args.home.is_dir():
        raise UsageError(f"--home {args.home} is not a directory")
    return run(
        SandboxConfig(
            host=args.host,
            port=args.port,
            home=args.home,
            model=args.model,
            open_browser=not args.no_browser,
            unsafe_listen=args.unsafe_listen,
        )
    )
