"""`fusereview gui [PROJECT|DATASET] [--model M]`: open the review application."""

from __future__ import annotations

import argparse

from fusereview.core.errors import FusereviewError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 1400x900, got {text!r}") from None
    if w < 200 or h < 200:
        raise argparse.ArgumentTypeError(f"--size must be at least 200x200, got {text!r}")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "path", nargs="?", help="a project folder or a dataset (Roboflow folder or COCO json)"
    )
    parser.add_argument("--model", help='model to predict with: "tiny", a folder, sam3.pt, checkpoint.pt')
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument(
        "--screenshot", metavar="FILE", help="render the window to a PNG after loading, then exit"
    )
    parser.add_argument("--size", type=_size, default=(1400, 900), help="window size for --screenshot (WxH)")


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    try:
        from fusereview.qt.app import run_gui
    except ImportError as exc:  # PySide6 missing on a headless install
        raise FusereviewError(
            f"the GUI needs PySide6 ({exc}); install fusereview with its GUI dependencies"
        ) from exc
    return run_gui(args.path, args.model, args.screenshot, device=args.device, size=args.size)
