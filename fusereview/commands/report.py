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
        help="first evaluate checkpoints/best on the test split of the run's project or dataset, and "
        "best and last on its validation split (writes RUN_DIR/eval/*.json; needs torch)",
    )
    parser.add_argument("--split", default="test", help="with --evaluate: the split (default: test)")
    parser.add_argument("--device", default=None, help="with --evaluate: cpu, cuda, mps")


def evaluate_checkpoint(run_dir: Path, checkpoint: str, split: str, device: str | None, *, name: str) -> Path:
    """Evaluate ``checkpoints/<checkpoint>`` on ``split`` and save it as ``eval/<name>.json``.

    Masks are evaluated when both the results and the ground truth have them; otherwise boxes,
    and the file says why (the report names it when it reasons from boxes). ``checkpoint`` may
    also be ``"start"``: the model the run started from (``config.json``'s ``model_spec``).
    """
    from fusereview.core.errors import FusereviewError
    from fusereview.evaluation.cocoeval import run_evaluation
    from fusereview.evaluation.inputs import iou_types_for, load_ground_truth, model_results, progress_bar
    from fusereview.evaluation.run_folder import read_run, write_evaluation_file

    run = read_run(run_dir)
    if checkpoint == "start":
        spec = str(run.config.get("model_spec") or "")
        if not spec:
            raise FusereviewError(
                f"{run_dir / 'config.json'}: model_spec: missing",
                file=str(run_dir / "config.json"),
                field="model_spec",
            )
        folder = Path(spec)
    else:
        folder = run_dir / "checkpoints" / checkpoint
        if not folder.is_dir():
            raise FusereviewError(
                f"{folder}: no {checkpoint} checkpoint (the run never validated)", file=str(folder)
            )
    source = run.config.get("project")
    if not source:
        raise FusereviewError(
            f"{run_dir / 'config.json'}: project: missing, so there is no split to evaluate on",
            file=str(run_dir / "config.json"),
        )
    truth = load_ground_truth(source, split)
    try:
        results, fingerprint = model_results(
            truth,
            str(folder),
            device=device,
            progress=progress_bar(f"predicting {split} ({checkpoint})"),
        )
        types, no_masks = iou_types_for(truth.gt, results)
        evaluations = {
            t: run_evaluation(
                truth.gt, results, iou_type=t, image_paths=truth.image_paths, gt_name=truth.name
            )
            for t in types
        }
    finally:
        truth.close()
    return write_evaluation_file(
        run_dir / "eval" / f"{name}.json",
        evaluations,
        split=split,
        model=str(folder),
        extra={"fingerprint": fingerprint, "no_masks": no_masks},
    )


def evaluate_best(run_dir: Path, split: str, device: str | None) -> list[Path]:
    """Evaluate the best checkpoint on ``split``, and best, last and the starting model on the validation split.

    The validation evaluations give the report its stability statements (the bootstrap interval
    of the best checkpoint's AP, best vs last, best vs the model the run started from):
    ``eval/valid.json``, ``eval/valid-last.json``, ``eval/valid-start.json``.
    """
    from fusereview.evaluation.inputs import EvaluationSourceError
    from fusereview.evaluation.run_folder import read_run

    written = [evaluate_checkpoint(run_dir, "best", split, device, name=split)]
    run = read_run(run_dir)
    best_epoch = run.end.get("best_epoch") if run.end else None
    epochs = [v.get("epoch") for v in run.vals if v.get("split", "valid") != "test"]
    for valid in ("valid", "val"):
        try:
            if valid != split:
                written.append(evaluate_checkpoint(run_dir, "best", valid, device, name=valid))
        except EvaluationSourceError:
            continue  # the project or dataset has no split of that name
        last_differs = bool(epochs) and best_epoch is not None and epochs[-1] != best_epoch
        if last_differs and (run_dir / "checkpoints" / "last").is_dir():
            written.append(evaluate_checkpoint(run_dir, "last", valid, device, name=f"{valid}-last"))
        if run.config.get("model_spec"):
            written.append(evaluate_checkpoint(run_dir, "start", valid, device, name=f"{valid}-start"))
        break
    return written


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.evaluation.report import write_report

    if args.evaluate:
        for saved in evaluate_best(Path(args.run_dir), args.split, args.device):
            print(f"wrote {saved}", file=sys.stderr)
    result = write_report(args.run_dir, args.out, worst_images=args.worst)
    print(f"wrote {result.markdown} and {len(result.images)} images", file=sys.stderr)
    for r in result.recommendations:
        print(f"- {r}")
    return 0
