"""Entry point of the `calligraphy` command.

Each part registers its own subcommands from a light `cli` module that imports nothing heavy, so
`calligraphy predict` and `calligraphy bot` start without loading torch or fastai.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from calligraphy.errors import UsageError

# Modules that expose `add_commands(subparsers)`; order is the order shown in --help.
COMMAND_MODULES = ("trainer.cli", "model_store.cli", "bot.cli", "sandbox.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calligraphy",
        description="Tell which style of Chinese calligraphy an image shows: train, serve, chat.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"calligraphy {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
