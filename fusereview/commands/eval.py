"""`fusereview eval`: COCO metrics and per-image errors of a model (or a results file) on a split."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "source", metavar="PROJECT|DATASET", help="a project folder, a dataset folder or a COCO json"
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--predictions", metavar="RESULTS.json", help="COCO results file to evaluate")
    what.add_argument("--model", metavar="M", help="model to run: 'tiny', a checkpoint, an export folder")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument(
        "--json", metavar="OUT", help="write the full evaluation (metrics, per-image errors) as JSON"
    )
    parser.add_argument(
        "--iou-type", choices=("bbox", "segm", "both"), default="both", help="boxes, masks or both (default)"
    )
    parser.add_argument(
        "--backend",
        choices=("pycocotools", "faster"),
        default="pycocotools",
        help="evaluator (faster: faster-coco-eval)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=0.0,
        help="ignore results scoring below this (default: keep all)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.05,
        help="with --model: the model's detection threshold (default 0.05)",
    )
    parser.add_argument(
        "--device", default=None, help="with --model: cpu, cuda, cuda:N, mps (default: best available)"
    )
    parser.add_argument(
        "--missing-masks",
        choices=("error", "box"),
        default="error",
        help="masks: ground truth without a mask is an error (default) or counts its box as its mask",
    )
    parser.add_argument(
        "--worst", type=int, default=10, help="how many of the worst images to list (default 10)"
    )


def gather_results(
    args: argparse.Namespace, truth: object, predictions: str | None, model: str | None
) -> tuple[list, str]:
    """Results and a label for them, from a results file or by running a model."""
    from fusereview.evaluation.inputs import load_results_file, model_results, progress_bar

    if predictions is not None:
        return load_results_file(predictions), str(predictions)
    assert model is not None
    results, fingerprint = model_results(
        truth,  # type: ignore[arg-type]
        model,
        threshold=args.threshold,
        device=args.device,
        progress=progress_bar(f"predicting {truth.split}"),  # type: ignore[attr-defined]
    )
    return results, f"{model} ({fingerprint})"


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.evaluation.cocoeval import run_evaluation
    from fusereview.evaluation.inputs import iou_types_for, load_ground_truth
    from fusereview.evaluation.run_folder import write_evaluation_file

    truth = load_ground_truth(args.source, args.split)
    try:
        results, label = gather_results(args, truth, args.predictions, args.model)
        # Box-only results (a detector, a results file without masks) or ground truth without
        # masks: say so, do boxes.
        types, no_masks = iou_types_for(truth.gt, results, args.iou_type)
        if no_masks:
            print(f"note: {no_masks}; evaluating boxes only", file=sys.stderr)
        evaluations = {}
        for t in types:
            ev = run_evaluation(
                truth.gt,
                results,
                iou_type=t,
                backend=args.backend,
                score_threshold=args.score_threshold,
                missing_masks=args.missing_masks,
                image_paths=truth.image_paths,
                gt_name=truth.name,
                results_name=args.predictions or "model results",
            )
            evaluations[t] = ev
            print(f"== {t} ({'boxes' if t == 'bbox' else 'masks'}) on {truth.split}: {label}")
            print(
                f"   {ev.n_images} images, {ev.n_objects} objects, {ev.n_detections} detections, {ev.backend}"
            )
            print(ev.metrics.format_table())
            print(ev.format_errors(worst=args.worst))
            print()
        if args.json:
            out = write_evaluation_file(
                args.json,
                evaluations,
                split=truth.split,
                model=args.model or args.predictions,
                extra={"source": str(args.source), "no_masks": no_masks},
            )
            print(f"wrote {out}", file=sys.stderr)
    finally:
        truth.close()
    return 0
