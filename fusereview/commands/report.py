"""`fusereview report`: a Markdown report (with PNG plots) of a training run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder")
    parser.add_argument("--out", metavar="report.md", help="where to write (default: RUN_DIR/report.md)")
    parser.add_argument("--worst", type=int, default=6, help="worst test images to draw (default 6)")
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="first evaluate checkpoints/best on the test split of the run's project or dataset "
        "(writes RUN_DIR/eval/test.json; needs torch)",
    )
    parser.add_argument("--split", default="test", help="with --evaluate: the split (default: test)")
    parser.add_argument("--device", default=None, help="with --evaluate: cpu, cuda, mps")


def evaluate_best(run_dir: Path, split: str, device: str | None) -> Path:
    """Evaluate the run's best checkpoint on ``split`` and save it under ``eval/``."""
    from fusereview.core.errors import FusereviewError
    from fusereview.evaluation.cocoeval import run_evaluation
    from fusereview.evaluation.inputs import load_ground_truth, model_results, progress_bar
    from fusereview.evaluation.run_folder import read_run, write_evaluation_file

    run = read_run(run_dir)
    best = run_dir / "checkpoints" / "best"
    if not best.is_dir():
        raise FusereviewError(f"{best}: no best checkpoint (the run never validated)", file=str(best))
    source = run.config.get("project")
    if not source:
        raise FusereviewError(
            f"{run_dir / 'config.json'}: project: missing, so there is no split to evaluate on",
            file=str(run_dir / "config.json"),
        )
    truth = load_ground_truth(source, split)
    try:
        results, fingerprint = model_results(
            truth, str(best), device=device, progress=progress_bar(f"predicting {split}")
        )
        types = ["bbox", "segm"] if results and all(r.get("segmentation") for r in results) else ["bbox"]
        evaluations = {
            t: run_evaluation(
                truth.gt, results, iou_type=t, image_paths=truth.image_paths, gt_name=truth.name
            )
            for t in types
        }
    finally:
        truth.close()
    return write_evaluation_file(
        run_dir / "eval" / f"{split}.json",
        evaluations,
        split=split,
        model=str(best),
        extra={"fingerprint": fingerprint},
    )


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.evaluation.report import write_report

    if args.evaluate:
        saved = evaluate_best(Path(args.run_dir), args.split, args.device)
        print(f"wrote {saved}", file=sys.stderr)
    result = write_report(args.run_dir, args.out, worst_images=args.worst)
    print(f"wrote {result.markdown} and {len(result.images)} images", file=sys.stderr)
    for r in result.recommendations:
        print(f"- {r}")
    return 0
