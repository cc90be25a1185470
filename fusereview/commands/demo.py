"""`fusereview demo`: the whole loop on a fresh machine, no weights to download.

Creates (or reopens) the demo project from the synthetic fuse-box generator, loads the shipped demo
model (or the one given with ``--model``), predicts (cached: a second start is instant) and opens the
review window with the queue ready.
"""

from __future__ import annotations

import argparse
import os
import sys

from fusereview.core.errors import FusereviewError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "--workdir", help="where the demo dataset and project live (default: ~/.local/share/fusereview/demo)"
    )
    parser.add_argument("--model", help="a real SAM3 checkpoint to use instead of the shipped demo model")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    parser.add_argument(
        "--screenshot", metavar="FILE", help="render the window once predictions are in, save, exit"
    )


def _check_display(screenshot: str | None) -> None:
    """Fail clearly (not with a Qt abort) when there is no screen to open a window on."""
    if screenshot or os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise FusereviewError(
            "no display to open the window on (DISPLAY is not set): run it on a desktop, under "
            "`xvfb-run`, or with --screenshot FILE to render the window into a PNG"
        )


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.demo.project import demo_model_dir, prepare_demo_project

    _check_display(args.screenshot)
    model = args.model or os.environ.get("FUSEREVIEW_DEMO_MODEL") or str(demo_model_dir())
    project = prepare_demo_project(args.workdir, progress=lambda m: print(m, file=sys.stderr))
    project_dir = str(project.root)
    project.close()
    from fusereview.qt.app import run_gui

    print(f"opening the review window on {project_dir} with the model {model}", file=sys.stderr)
    return run_gui(project_dir, model=model, screenshot=args.screenshot, device=args.device)
