"""`fusereview label-issues PROJECT [--model M] [--out issues.csv|json]`: the labels the model disagrees with.

Without ``--model`` the project's stored predictions are used (its active model's, or the only
model's; ``--fingerprint`` picks one). With ``--model`` the project is predicted first with that
model at a low threshold (``--threshold``, default 0.05: weak detections are evidence too),
through the same cached path as ``fusereview predict``. The top issues are printed as a table;
``--out`` writes every issue, one row each, as CSV or as a JSON list of records (both load with
``pandas.read_csv`` / ``pandas.read_json``, and the CSV in any spreadsheet). ``--kind K`` lists one
kind only, every label scored for it (a label whose likeliest issue is another kind still shows
there when it is likely enough to be this one).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusereview.core.errors import FusereviewError

if TYPE_CHECKING:
    from fusereview.core.label_issues import IssueReport
    from fusereview.core.project import Project

#: The columns of ``--out``, in order (one row per issue).
FIELDS = (
    "rank",
    "image",
    "split",
    "kind",
    "score",
    "image_score",
    "annotation_id",
    "category",
    "label_x0",
    "label_y0",
    "label_x1",
    "label_y1",
    "prediction_id",
    "prediction_category",
    "prediction_score",
    "prediction_x0",
    "prediction_y0",
    "prediction_x1",
    "prediction_y1",
    "iou",
    "project_annotation_id",
    "image_id",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "path", metavar="PROJECT", help="a project folder (or the dataset it was imported from)"
    )
    parser.add_argument(
        "--model",
        "-m",
        default=None,
        help="predict the project with this model first ('tiny', a transformers folder, sam3.pt, "
        "checkpoint.pt or an export folder); default: the predictions already stored",
    )
    parser.add_argument(
        "--fingerprint", default=None, help="use the stored predictions of this model fingerprint"
    )
    parser.add_argument("--out", type=Path, default=None, help="write every issue to this .csv or .json file")
    parser.add_argument("--top", type=int, default=20, help="rows of the table printed (default 20)")
    parser.add_argument(
        "--min-score", type=float, default=None, help="leave out issues scoring less (default 0.25)"
    )
    parser.add_argument("--split", default=None, help="only images of this split")
    parser.add_argument(
        "--kind",
        choices=("missing", "spurious", "misplaced", "wrong_class"),
        default=None,
        help="only issues of this kind, every label scored for it (default: each label's likeliest kind)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.05, help="with --model: the score threshold (default 0.05)"
    )
    parser.add_argument(
        "--check-boxes",
        action="store_true",
        help="with --model: prompt its interactive head with each label no detection supports, to tell "
        "an object it overlooked from a box on nothing",
    )
    parser.add_argument("--device", default="auto", help="with --model: auto (default), cpu, cuda, mps")
    parser.add_argument("--batch-size", type=int, default=4, help="with --model: images per model call")
    parser.add_argument(
        "--project-dir", default=None, help="where the dataset's project is (default: beside it)"
    )


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad options before anything is read or written."""
    if args.out is not None and args.out.suffix.lower() not in (".csv", ".json"):
        raise FusereviewError(f"--out {args.out}: expected a .csv or .json file name")
    if args.out is not None and args.out.is_dir():
        raise FusereviewError(f"--out {args.out}: is a folder, expected a .csv or .json file name")
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        raise FusereviewError(f"--min-score must be in [0, 1], got {args.min_score}")
    if not 0.0 <= args.threshold < 1.0:
        raise FusereviewError(f"--threshold must be in [0, 1), got {args.threshold}")
    if args.top < 0:
        raise FusereviewError(f"--top must be 0 or more, got {args.top}")
    if args.model is not None and args.fingerprint is not None:
        raise FusereviewError("--model and --fingerprint: give one (--model predicts, --fingerprint reads)")
    if args.check_boxes and args.model is None:
        raise FusereviewError("--check-boxes needs --model: that model is asked about each label's box")


def _predict(project: Project, args: argparse.Namespace) -> tuple[str, Any]:
    """Predict the project with ``--model`` (cached path of ``fusereview predict``): fingerprint, predictor."""
    from fusereview.commands.predict import print_counts
    from fusereview.core.progress import Progress
    from fusereview.models.predict_job import predict_project
    from fusereview.models.sam3 import load_predictor

    predictor = load_predictor(args.model, device=args.device)
    print(f"model {predictor.report.summary()} on {predictor.device}", file=sys.stderr)
    counts = predict_project(
        project,
        predictor,
        split=args.split,
        batch_size=args.batch_size,
        threshold=args.threshold,
        progress=(bar := Progress("predict")),
    )
    bar.close()
    print_counts(counts)
    return str(predictor.fingerprint), predictor


def _check_boxes(
    project: Project, args: argparse.Namespace, predictor: Any, model: str, image_ids: list[int] | None
) -> dict[int, float]:
    """``--check-boxes``: the interactive head's support for each label the spurious queue lists."""
    from fusereview.core.label_issues import ISSUE_MIN
    from fusereview.core.progress import Progress
    from fusereview.models.box_check import check_label_boxes, labels_to_check
    from fusereview.models.interactive import load_interactive

    segmenter = load_interactive(args.model, predictor)
    ids = labels_to_check(project, model, min_score=ISSUE_MIN, image_ids=image_ids)
    support = check_label_boxes(
        project, segmenter, ids, progress=(bar := Progress("check boxes", unit="label"))
    )
    bar.close()
    found = sum(1 for v in support.values() if v >= 0.5)
    print(
        f"asked the model about {len(support)} label boxes no detection supports: it finds an object in "
        f"{found} (likely overlooked, not spurious), nothing in {len(support) - found} (likely spurious)",
        file=sys.stderr,
    )
    return support


def records(project: Project, report: IssueReport) -> list[dict[str, Any]]:
    """One flat record per issue, most likely first (the rows of ``--out``)."""
    images = {img.id: img for img in project.images()}
    cats = {c.id: c.name for c in project.categories()}
    coco_ids = dict(project.db.read("SELECT id, coco_id FROM annotations"))
    out = []
    for rank, issue in enumerate(report.issues, start=1):
        img = images[issue.image_id]
        lb = issue.label_box or (None,) * 4
        pb = issue.prediction_box or (None,) * 4
        out.append(
            {
                "rank": rank,
                "image": img.file_name,
                "split": img.split,
                "kind": issue.kind,
                "score": round(issue.score, 4),
                "image_score": round(report.image_scores.get(issue.image_id, 0.0), 4),
                "annotation_id": coco_ids.get(issue.annotation_id)
                if issue.annotation_id is not None
                else None,
                "category": cats.get(issue.category_id, str(issue.category_id)),
                **{f"label_{k}": _round(v) for k, v in zip(("x0", "y0", "x1", "y1"), lb, strict=True)},
                "prediction_id": issue.prediction_id,
                "prediction_category": (
                    cats.get(issue.prediction_category_id, str(issue.prediction_category_id))
                    if issue.prediction_category_id is not None
                    else None
                ),
                "prediction_score": _round(issue.prediction_score, 4),
                **{f"prediction_{k}": _round(v) for k, v in zip(("x0", "y0", "x1", "y1"), pb, strict=True)},
                "iou": _round(issue.iou, 4),
                "project_annotation_id": issue.annotation_id,
                "image_id": issue.image_id,
            }
        )
    return out


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def write_records(rows: list[dict[str, Any]], out: Path) -> Path:
    """Write the records as CSV (empty cells for none) or as a JSON list, atomically."""
    from fusereview.core.files import write_json_atomic, write_text_atomic

    if out.suffix.lower() == ".json":
        return write_json_atomic(rows, out, indent=1)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(buf.getvalue(), out)


def format_table(rows: list[dict[str, Any]], top: int) -> str:
    """The top issues as a fixed-width table."""
    from fusereview.core.label_issues import KIND_NAMES

    head = f"{'#':>4}  {'score':>5}  {'kind':<21}  {'image':<28}  {'ann':>5}  {'category':<14}  prediction"
    lines = [head, "-" * len(head)]
    for r in rows[:top]:
        name = r["image"]
        # elide the middle: a Roboflow name starts with the original file name and ends in a hash
        image = name if len(name) <= 28 else name[:18] + "…" + name[-9:]
        ann = "" if r["annotation_id"] is None else str(r["annotation_id"])
        if r["prediction_id"] is None:
            pred = "none near it"
        else:
            box = ", ".join(f"{r[f'prediction_{k}']:.0f}" for k in ("x0", "y0", "x1", "y1"))
            iou = "" if r["iou"] is None else f", IoU {r['iou']:.2f}"
            pred = f"{r['prediction_category']} {r['prediction_score']:.2f} [{box}]{iou}"
        lines.append(
            f"{r['rank']:>4}  {r['score']:>5.2f}  {KIND_NAMES[r['kind']]:<21}  {image:<28}  {ann:>5}  "
            f"{r['category'][:14]:<14}  {pred}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.core.label_issues import ISSUE_MIN, KIND_NAMES, KIND_PLURALS, find_label_issues
    from fusereview.core.project import Project

    _check_args(args)
    with Project.open_or_import(args.path, args.project_dir) as project:
        if args.split is not None and args.split not in project.splits():
            raise FusereviewError(
                f"--split {args.split}: the project's splits are {', '.join(project.splits())}"
            )
        model, predictor = _predict(project, args) if args.model is not None else (args.fingerprint, None)
        image_ids = None if args.split is None else [img.id for img in project.images(args.split)]
        min_score = ISSUE_MIN if args.min_score is None else args.min_score
        support = _check_boxes(project, args, predictor, model, image_ids) if args.check_boxes else None
        report = find_label_issues(
            project, model, image_ids=image_ids, min_score=min_score, kind=args.kind, box_support=support
        )
        rows = records(project, report)
        counts = ", ".join(f"{n} {KIND_NAMES[k]}" for k, n in report.counts().items())
        if args.kind is not None:
            counts = f"{KIND_PLURALS[args.kind]} only"
        print(
            f"{len(report.issues)} label issues scoring {min_score:.2f} or more ({counts}) on "
            f"{len(report.image_scores)} images; model {report.model}: {report.n_predictions} predictions, "
            f"{report.n_annotations} labels"
            + (f"; {report.hidden} hidden by 'label is right'" if report.hidden else "")
        )
        if rows and args.top:
            print(format_table(rows, args.top))
            if len(rows) > args.top:
                print(
                    f"... and {len(rows) - args.top} more"
                    + (f" in {args.out}" if args.out else " (--out FILE)")
                )
        if args.out is not None:
            written = write_records(rows, args.out)
            print(f"wrote {len(rows)} issues to {written}", file=sys.stderr)
    return 0
