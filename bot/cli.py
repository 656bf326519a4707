"""Subcommands of the bot: bot, sandbox."""

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register this part's subcommands."""
