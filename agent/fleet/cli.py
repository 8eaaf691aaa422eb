"""Subcommands of this package for the ``headframe`` CLI (placeholder until implemented)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this package's subcommands to the ``headframe`` parser."""
