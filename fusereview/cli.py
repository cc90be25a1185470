"""The ``fusereview`` command: one entry point, one subcommand per job.

Each subcommand lives in ``fusereview/commands/<name>.py`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``. Command modules import heavy libraries (torch, Qt) inside ``run`` only,
so ``fusereview --help`` and the Qt-free commands start fast and work on a headless server.
Every command runs inside :func:`fusereview.error_boundary.run_command`: whatever it raises ends as
one line on stderr (a bug's traceback goes to a log file), never as a traceback on the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fusereview import __version__
from fusereview.error_boundary import run_command

# name -> (module, one-line help). Order is the order ``--help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "gui": ("fusereview.commands.gui", "open the review application (default when no command is given)"),
    "demo": ("fusereview.commands.demo", "open the built-in demo project (synthetic fuse boxes, tiny model)"),
    "info": ("fusereview.commands.info", "describe a dataset: splits, images, classes, quirks"),
    "validate": ("fusereview.commands.validate", "check a dataset; exit 1 and list every problem"),
    "import": ("fusereview.commands.import_", "import a COCO / Roboflow dataset into a project"),
    "export": ("fusereview.commands.export", "export a project's annotations as COCO json"),
    "synth": ("fusereview.commands.synth", "generate a synthetic fuse-box dataset (Roboflow layout)"),
    "predict": ("fusereview.commands.predict", "run a SAM3 model over a dataset or project"),
    "convert": (
        "fusereview.commands.convert",
        "convert an official sam3.pt / checkpoint.pt to fusereview's format",
    ),
    "train": ("fusereview.commands.train", "fine-tune a SAM3 model on a project"),
    "eval": ("fusereview.commands.eval", "COCO metrics and per-image errors of a model on a split"),
    "compare": ("fusereview.commands.compare", "compare two models on the same split"),
    "report": ("fusereview.commands.report", "write a Markdown report of a training run"),
    "label-issues": ("fusereview.commands.label_issues", "rank the labels a model disagrees with (CSV/JSON)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="fusereview",
        description="Review SAM3 predictions, correct them into COCO annotations, retrain, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"fusereview {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["gui"]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args.command, lambda: args._module.run(args))
