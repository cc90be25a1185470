"""`fusereview info` (not yet built)."""

from __future__ import annotations

import argparse

from fusereview.core.errors import FusereviewError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    raise FusereviewError("'info' is not built yet")
