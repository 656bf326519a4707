"""Subcommands of the model store: predict, evaluate, models."""

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register this part's subcommands."""
