"""`fusereview validate DATASET`: exit 0 when the dataset is usable, else 1 and one line per problem.

Each problem is printed as ``file: json-path: message`` on stdout (so that it can be grepped or
piped); the count goes to stderr. No traceback, and nothing on disk is changed.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "dataset", help="a Roboflow COCO export folder, a folder with one json, or a COCO json file"
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also decode every image (slow; by default headers and file ends are checked)",
    )
    parser.add_argument(
        "--quirks", action="store_true", help="also list the quirks that were found and handled"
    )


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    print(
        f"\rchecking images [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr
    )


def run(args: argparse.Namespace) -> int:
    """Check the dataset; print every problem; return 0 (usable) or 1."""
    from fusereview.core.coco import check_dataset
    from fusereview.core.errors import count_problems

    progress = _progress if args.deep and sys.stderr.isatty() else None
    dataset, problems = check_dataset(args.dataset, deep=args.deep, progress=progress)
    for p in problems:
        print(p)
    if problems:
        total = count_problems(problems)  # lists are capped per file; the count is not
        print(f"{total} problem{'s' if total != 1 else ''} found in {args.dataset}", file=sys.stderr)
        return 1
    assert dataset is not None  # no problems means the json files loaded
    n_images = sum(len(s.images) for s in dataset.splits.values())
    n_anns = sum(len(s.annotations) for s in dataset.splits.values())
    quirks = dataset.quirks
    print(
        f"OK: {args.dataset}: {len(dataset.splits)} split(s), {n_images} images, {n_anns} annotations, "
        f"{len(quirks)} quirk(s) handled"
    )
    if args.quirks:
        for q in quirks:
            print(f"  quirk: {q}")
    return 0
