"""`fusereview compare`: two models (or results files, or saved evaluations) on the same split."""

from __future__ import annotations

import argparse
import sys


class _Ordered(argparse.Action):
    """Collect ``--model`` / ``--predictions`` / ``--evaluation`` in the order given (first = A)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def]
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((option_string.lstrip("-"), values))
        setattr(namespace, self.dest, items)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "source",
        metavar="PROJECT|DATASET",
        nargs="?",
        help="a project, dataset folder or COCO json (not needed with --evaluation)",
    )
    for flag, meta, text in (
        ("--model", "M", "a model to run (give two; the first is the baseline A)"),
        ("--predictions", "RESULTS.json", "a COCO results file"),
        ("--evaluation", "EVAL.json", "a file written by 'fusereview eval --json'"),
    ):
        parser.add_argument(flag, metavar=meta, dest="sources", action=_Ordered, help=text)
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument(
        "--iou-type", choices=("bbox", "segm"), default="bbox", help="boxes (default) or masks"
    )
    parser.add_argument(
        "--iou", type=float, default=0.5, help="IoU threshold of the per-image delta (0.5 or 0.75)"
    )
    parser.add_argument("--backend", choices=("pycocotools", "faster"), default="pycocotools")
    parser.add_argument("--threshold", type=float, default=0.05, help="with --model: detection threshold")
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="score at which per-image verdicts are counted (default: the project's review threshold, "
        "else the score with the best F1 on A's results); AP always counts every detection",
    )
    parser.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples of the ΔAP interval (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (same seed, same interval)")
    parser.add_argument("--device", default=None, help="with --model: cpu, cuda, mps")
    parser.add_argument("--json", metavar="OUT", help="write the comparison as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    import json
    from pathlib import Path

    from fusereview.commands.eval import gather_results
    from fusereview.core.errors import FusereviewError
    from fusereview.evaluation.cocoeval import run_evaluation
    from fusereview.evaluation.compare import compare
    from fusereview.evaluation.inputs import load_ground_truth
    from fusereview.evaluation.operating_point import REVIEW_THRESHOLD_SETTING
    from fusereview.evaluation.report import write_text_atomic
    from fusereview.evaluation.run_folder import read_evaluation_file

    if args.resamples < 1:
        raise FusereviewError(f"--resamples must be at least 1, got {args.resamples}")
    sources = args.sources or []
    if len(sources) != 2:
        raise FusereviewError(
            "give exactly two of --model / --predictions / --evaluation (the first is the baseline)"
        )
    truth = None
    evaluations = []
    labels = []
    review_threshold = None
    try:
        for kind, value in sources:
            if kind == "evaluation":
                saved = read_evaluation_file(value).evaluations
                if args.iou_type not in saved:
                    raise FusereviewError(
                        f"{value}: has no {args.iou_type} evaluation (it has {sorted(saved)})",
                        file=str(value),
                    )
                evaluations.append(saved[args.iou_type])
                labels.append(value)
                continue
            if truth is None:
                if not args.source:
                    raise FusereviewError(
                        "--model and --predictions need the PROJECT or DATASET to evaluate on"
                    )
                truth = load_ground_truth(args.source, args.split)
                if truth.project is not None:
                    review_threshold = truth.project.get_setting(REVIEW_THRESHOLD_SETTING)
            results, label = gather_results(
                args, truth, value if kind == "predictions" else None, value if kind == "model" else None
            )
            evaluations.append(
                run_evaluation(
                    truth.gt,
                    results,
                    iou_type=args.iou_type,
                    backend=args.backend,
                    image_paths=truth.image_paths,
                    gt_name=truth.name,
                    results_name=value if kind == "predictions" else "model results",
                )
            )
            labels.append(label)
    finally:
        if truth is not None:
            truth.close()
    comparison = compare(
        evaluations[0],
        evaluations[1],
        iou=args.iou,
        label_a="A",
        label_b="B",
        score_threshold=args.score_threshold,
        review_threshold=review_threshold,
        resamples=args.resamples,
        seed=args.seed,
    )
    print(f"A = {labels[0]}\nB = {labels[1]}")
    print(comparison.format_table())
    if args.json:
        out = write_text_atomic(
            json.dumps({**comparison.to_dict(), "a": labels[0], "b": labels[1]}),
            Path(args.json),
        )
        print(f"wrote {out}", file=sys.stderr)
    return 0
