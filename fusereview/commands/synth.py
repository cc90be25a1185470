"""`fusereview synth`: write a synthetic fuse-box dataset in the Roboflow COCO layout."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to create (must not exist, or be empty)")
    parser.add_argument(
        "--images", type=int, default=35, help="number of images over all splits (default: 35)"
    )
    parser.add_argument(
        "--size", type=int, default=512, help="image width and height in pixels (default: 512)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default: 0)")


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print where it is and what it holds."""
    from fusereview.core.progress import Progress
    from fusereview.core.synthetic import generate_dataset, split_counts

    start = time.perf_counter()
    out = generate_dataset(
        args.out_dir, images=args.images, size=args.size, seed=args.seed, progress=Progress("synth")
    )
    train, valid, test = split_counts(args.images)
    seconds = time.perf_counter() - start
    print(f"{out}: {args.images} images ({args.size}x{args.size}), train/valid/test {train}/{valid}/{test}, "
          f"seed {args.seed}, {seconds:.1f} s")  # fmt: skip
    return 0
