"""`fusereview predict`: run a SAM3 model over a dataset or project, filling the prediction cache.

Scale-out: ``torchrun --nproc_per_node N -m fusereview predict ...`` shards the images over the
ranks; rank 0 stores the merged results and writes ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fusereview.core.errors import FusereviewError
from fusereview.core.files import write_json_atomic
from fusereview.core.progress import Progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "path", metavar="DATASET|PROJECT", help="a COCO / Roboflow dataset, or a project folder"
    )
    parser.add_argument(
        "--model",
        "-m",
        default=None,
        help="'tiny', a transformers folder, sam3.pt, checkpoint.pt or an export folder "
        "(default: the project's active model)",
    )
    parser.add_argument("--split", default=None, help="only this split (train, valid, test)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch-size", type=int, default=4, help="images per model call (default 4)")
    parser.add_argument("--threshold", type=float, default=0.3, help="score threshold (default 0.3)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="RESULTS.json",
        help="also write COCO results (the dataset's own image and category ids): this file for one "
        "split, RESULTS.<split>.json for each split when there are several",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer.json or bpe_simple_vocab_16e6.txt.gz for a bare .pt"
    )
    parser.add_argument(
        "--config", default=None, help="config.json for a .pt checkpoint (default: full-size SAM3)"
    )
    parser.add_argument(
        "--project-dir", default=None, help="where the dataset's project is (default: beside it)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the vision encoder (GPU fast path)"
    )


def results_paths(out: Path, splits: list[str]) -> dict[str, Path]:
    """Where ``--out`` puts each split's results: ``out`` itself for one split, else ``<stem>.<split>.json``.

    One file per split because COCO image ids repeat across a Roboflow export's splits: a file
    with the dataset's own ids can only be of one split (what ``COCO.loadRes`` on the user's json
    and ``fusereview eval --split`` expect).
    """
    if len(splits) == 1:
        return {splits[0]: out}
    return {s: out.with_name(f"{out.stem}.{s}{out.suffix}") for s in splits}


def print_counts(counts: dict) -> None:
    """Say on stderr what a ``predict_project`` run did (each failed image, then the totals)."""
    for f in counts["failures"]:
        print(f"skipped {f['file_name']}: {f['error']}", file=sys.stderr)
    print(
        f"{counts['images']} images: {counts['predicted']} predicted, {counts['cached']} cached, "
        f"{counts['failed']} failed; {counts['detections']} detections stored",
        file=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.core.project import Project
    from fusereview.models.distributed import (
        barrier,
        dist_env,
        init_distributed,
        predict_project_sharded,
        rank_device,
        shutdown,
    )
    from fusereview.models.predict_job import coco_results, predict_project
    from fusereview.models.sam3 import load_predictor

    if args.batch_size < 1:
        raise FusereviewError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 0.0 <= args.threshold < 1.0:
        raise FusereviewError(f"--threshold must be in [0, 1), got {args.threshold}")
    if args.out is not None and args.out.suffix != ".json":
        raise FusereviewError(f"--out {args.out}: expected a .json file name")
    env = dist_env()
    device = rank_device(env, args.device) if env else args.device
    if env:
        init_distributed(env, device)
    try:
        main = env is None or env.is_main
        # Rank 0 imports the dataset (once); the others open the project after it exists.
        project = Project.open_or_import(args.path, args.project_dir) if main else None
        if env:
            barrier()
            if project is None:
                project = Project.open_or_import(args.path, args.project_dir)
        assert project is not None
        try:
            if args.split is not None and args.split not in project.splits():
                raise FusereviewError(
                    f"--split {args.split}: the project's splits are {', '.join(project.splits())}"
                )
            spec = args.model
            if spec is None:
                active = project.active_model()
                if not active:
                    raise FusereviewError("no --model given and the project has no active model")
                spec = active["spec"]
            predictor = load_predictor(
                spec, device=device, tokenizer=args.tokenizer, config=args.config, compile=args.compile
            )
            if main:
                print(f"model {predictor.report.summary()} on {predictor.device}", file=sys.stderr)
            bar = Progress("predict", enabled=main)
            if env:
                counts = predict_project_sharded(
                    project,
                    predictor,
                    env,
                    split=args.split,
                    batch_size=args.batch_size,
                    threshold=args.threshold,
                    progress=bar,
                )
            else:
                counts = predict_project(
                    project,
                    predictor,
                    split=args.split,
                    batch_size=args.batch_size,
                    threshold=args.threshold,
                    progress=bar,
                )
            if not main or counts is None:
                return 0
            print_counts(counts)
            if args.out is not None:
                splits = [args.split] if args.split is not None else project.splits()
                for split, out in results_paths(args.out, splits).items():
                    results = coco_results(
                        project, predictor.fingerprint, split=split, threshold=args.threshold
                    )
                    write_json_atomic(results, out)
                    print(f"wrote {len(results)} results of {split} to {out}", file=sys.stderr)
            return 0
        finally:
            project.close()
    finally:
        if env:
            shutdown()
