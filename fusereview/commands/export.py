"""`fusereview export PROJECT --out FILE|DIR [--split S] [--only-reviewed]`: write COCO json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fusereview.core.errors import FusereviewError

if TYPE_CHECKING:
    from fusereview.core.project import Project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument("project", type=Path, help="the project folder (or the dataset it was imported from)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="a .json file (one file) or a folder (Roboflow layout: <DIR>/<split>/_annotations.coco.json)",
    )
    parser.add_argument("--split", default=None, help="export only this split (default: every split)")
    parser.add_argument(
        "--only-reviewed",
        action="store_true",
        help="only images with no pending prediction (and their annotations)",
    )


def _open(path: Path) -> Project:
    """The project at ``path``, or the project beside the dataset at ``path``."""
    from fusereview.core.project import DB_NAME, Project, default_project_dir

    if (path / DB_NAME).is_file():
        return Project.open(path)
    beside = default_project_dir(path)
    if path.exists() and (beside / DB_NAME).is_file():
        return Project.open(beside)
    raise FusereviewError(
        f"{path}: not a project folder (no {DB_NAME}), and no project {beside} beside it; "
        "create one with `fusereview import DATASET`",
        file=str(path),
    )


def run(args: argparse.Namespace) -> int:
    """Export the project's annotations atomically (validated with pycocotools before the rename)."""
    start = time.perf_counter()
    with _open(args.project) as project:
        print(f"exporting {project.root} ...", file=sys.stderr)
        if args.out.suffix.lower() == ".json" and args.split is None and len(project.splits()) > 1:
            print(
                f"  note: {len(project.splits())} splits in one file: image and annotation ids are the "
                "project's (COCO ids repeat across splits), file names start with their split folder",
                file=sys.stderr,
            )
        written = project.export_coco(args.out, split=args.split, only_reviewed=args.only_reviewed)
    for path in written:
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
