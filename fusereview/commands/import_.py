"""`fusereview import DATASET [--project DIR]`: create a project from a COCO / Roboflow dataset."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "dataset", type=Path, help="a Roboflow export folder (train/ valid/ test/) or one COCO json"
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="project folder to create (default: <dataset>.fusereview beside the dataset)",
    )


def run(args: argparse.Namespace) -> int:
    """Load the dataset, report its quirks, and import it into a new project."""
    from fusereview.core.coco import load_dataset
    from fusereview.core.project import DB_NAME, Project, ProjectError, default_project_dir

    target = args.project if args.project is not None else default_project_dir(args.dataset)
    if (target / DB_NAME).exists():  # say so before spending seconds reading a big dataset
        raise ProjectError(
            f"{target}: a project already exists here; open it, or choose another --project folder",
            file=str(target),
        )
    start = time.perf_counter()
    print(f"reading {args.dataset} ...", file=sys.stderr)
    dataset = load_dataset(args.dataset)
    for quirk in dataset.quirks:
        print(f"  note: {quirk}", file=sys.stderr)
    print(f"importing into {target} ...", file=sys.stderr)
    with Project.create(target, dataset, source=args.dataset) as project:
        counts = project.counts()
        names = ", ".join(f"{c.name!r}" for c in project.categories())
        print(
            f"imported {counts['images']} images and {counts['annotations']} annotations "
            f"({', '.join(project.splits())}; classes {names}) into {project.root} "
            f"in {time.perf_counter() - start:.1f} s"
        )
    return 0
