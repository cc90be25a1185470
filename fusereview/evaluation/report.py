"""Markdown report of a training run, with PNG plots, and recommendations drawn from its numbers.

It covers what the customer's hand-written report covered: configuration, dataset statistics,
timeline and epoch times, memory, loss components, metrics by epoch and the best epoch, final and
test-split metrics (the 12 numbers), per-size AP, checkpoint files and sizes; then what the
numbers support, read by :mod:`fusereview.evaluation.report_evidence` (boxes or masks, whether
the best epoch is real, whether to train longer). Figures are drawn with matplotlib
(:mod:`fusereview.evaluation.figures`), image overlays with OpenCV.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.files import write_bytes_atomic
from fusereview.evaluation.cocoeval import METRIC_NAMES, Evaluation, format_value
from fusereview.evaluation.errors import SIZES, ErrorCounts, size_label
from fusereview.evaluation.figures import Series, loss_figure, pr_figure, save_figure, validation_figure
from fusereview.evaluation.operating_point import (
    REVIEW_THRESHOLD_SETTING,
    choose_operating_point,
    errors_at,
    totals_at,
)
from fusereview.evaluation.plots import draw_overlay, legend_strip, write_png
from fusereview.evaluation.report_evidence import (
    Evidence,
    Stability,
    ap_interval,
    choose_evidence,
    stability,
    still_rising,
)
from fusereview.evaluation.run_folder import EvaluationFile, RunData, plain_number, read_run


def _loss_keys(steps: list[dict[str, Any]]) -> list[str]:
    """The total and every component a run logged (``loss_*``), in the order the run wrote them.

    Read from the records rather than listed here: the evaluation layer must not import the
    training engine (torch), and a run from another engine version is plotted with what it has.
    """
    keys: dict[str, None] = {}
    for s in steps:
        for k in s:
            if k == "loss" or k.startswith("loss_"):
                keys.setdefault(k, None)
    return list(keys)


# Below these a validation split gives an unstable mAP (one object is several AP points).
SMALL_VALID_IMAGES = 50
SMALL_VALID_OBJECTS = 100


@dataclass
class SplitStats:
    """Counts of one split."""

    images: int
    objects: int
    sizes: dict[str, int]
    categories: dict[str, int]
    images_without_objects: int

    @property
    def objects_per_image(self) -> float:
        """Mean objects per image."""
        return self.objects / self.images if self.images else 0.0


@dataclass
class ReportResult:
    """What :func:`write_report` wrote."""

    markdown: Path
    images: list[Path] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)


def split_stats(gt: Mapping[str, Any]) -> SplitStats:
    """Statistics of one COCO split dict."""
    names = {c["id"]: str(c.get("name", c["id"])) for c in gt.get("categories", [])}
    sizes = dict.fromkeys(SIZES, 0)
    cats: dict[str, int] = {}
    with_objects = set()
    anns = [a for a in gt.get("annotations", []) if not a.get("iscrowd")]
    for a in anns:
        sizes[size_label(float(a.get("area", 0.0)))] += 1
        name = names.get(a.get("category_id"), str(a.get("category_id")))
        cats[name] = cats.get(name, 0) + 1
        with_objects.add(a.get("image_id"))
    n_images = len(gt.get("images", []))
    return SplitStats(n_images, len(anns), sizes, cats, n_images - len(with_objects))


def dataset_stats_for_run(config: Mapping[str, Any]) -> tuple[dict[str, SplitStats], str]:
    """Split statistics of the data a run trained on, and a note when they cannot be had.

    ``config["project"]`` may be a project folder or a dataset (folder or json).
    """
    source = config.get("project")
    if not source:
        return {}, "the run's config.json names no project or dataset"
    path = Path(str(source))
    if not path.exists():
        return {}, f"the project or dataset {path} is not on this machine"
    try:
        if (path / "project.db").exists():
            from fusereview.core.project import Project

            project = Project.open(path)
            try:
                return {s: split_stats(project.to_coco_dict(s)) for s in project.splits()}, ""
            finally:
                project.close()
        from fusereview.core.coco import load_dataset

        dataset = load_dataset(path)
        return {name: split_stats(s.data) for name, s in dataset.splits.items()}, ""
    except FusereviewError as exc:
        return {}, f"could not read {path}: {exc}"


def write_text_atomic(text: str, out: Path) -> Path:
    """Write text atomically (see :func:`fusereview.core.files.write_bytes_atomic`).

    Text quoted from a run folder may hold a lone surrogate (``"\\ud800"`` in its JSON): it is
    written escaped, as the file spelled it, instead of failing the whole report.
    """
    return write_bytes_atomic(text.encode("utf-8", "backslashreplace"), out)


# --- helpers -------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _when(t: float | None) -> str:
    if not plain_number(t):
        return "?"  # missing, or not a time any clock shows (a config.json edited by hand)
    try:
        return dt.datetime.fromtimestamp(float(t), tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "?"


def _duration(seconds: float | None) -> str:
    if not plain_number(seconds):
        return "?"
    s = round(float(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m {sec:02d}s" if h else (f"{m}m {sec:02d}s" if m else f"{seconds:.1f}s")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"


def _metric(rec: Mapping[str, Any] | None, iou_type: str, name: str) -> float | None:
    if not rec:
        return None
    block = rec.get(iou_type)
    if not isinstance(block, Mapping):
        return None
    v = block.get(name)
    return float(v) if isinstance(v, (int, float)) and v >= 0 else None


def _cell(rec: Mapping[str, Any], iou_type: str, name: str) -> str:
    """A table cell: the value, N/A (measured, nothing to measure) or a dash (not evaluated)."""
    if not isinstance(rec.get(iou_type), Mapping):
        return "—"
    return format_value(_metric(rec, iou_type, name))


def _best_val(run: RunData) -> dict[str, Any] | None:
    """The validation record of the best epoch (the end record's, else the highest bbox AP)."""
    valid = [v for v in run.vals if v.get("split", "valid") != "test"]
    if not valid:
        return None
    best_epoch = run.end.get("best_epoch") if run.end else None
    if best_epoch is not None:
        for v in valid:
            if v.get("epoch") == best_epoch:
                return v
    scored = [v for v in valid if _metric(v, "bbox", "AP") is not None]
    return max(scored, key=lambda v: _metric(v, "bbox", "AP") or 0.0) if scored else valid[-1]


def _review_threshold(config: Mapping[str, Any]) -> float | None:
    """The project's review threshold, when the run trained on a project that has one."""
    source = config.get("project")
    if not source or not (Path(str(source)) / "project.db").is_file():
        return None
    from fusereview.core.project import Project

    try:
        with Project.open(Path(str(source))) as project:
            value = project.get_setting(REVIEW_THRESHOLD_SETTING)
    except FusereviewError:
        return None
    return float(value) if isinstance(value, (int, float)) else None


#: File stems of ``report --evaluate``'s validation evaluations, by model.
_VALID_STEMS = {
    "best": ("valid", "val"),
    "last": ("valid-last", "val-last"),
    "start": ("valid-start", "val-start"),
}


def _saved(run: RunData, model: str, iou_type: str = "bbox") -> Evaluation | None:
    """The saved validation evaluation of ``model`` (``best``, ``last`` or ``start``), if any."""
    for f in run.evaluations:
        if f.path.stem in _VALID_STEMS[model] and iou_type in f.evaluations:
            return f.evaluations[iou_type]
    return None


def _chosen_file(run: RunData) -> EvaluationFile | None:
    """The evaluation the error analysis shows: the test split's (of the best checkpoint), else
    the last one saved that is of neither the ``last`` checkpoint nor the starting model."""
    others = {s for k in ("last", "start") for s in _VALID_STEMS[k]}
    files = [f for f in run.evaluations if Path(f.model).name != "last" and f.path.stem not in others]
    tests = [f for f in files if f.split == "test"]
    pick = tests or files
    return pick[-1] if pick else None


# --- the report ----------------------------------------------------------------------------------


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    dataset_stats: Mapping[str, SplitStats] | None = None,
    worst_images: int = 6,
) -> ReportResult:
    """Write ``report.md`` (default: in the run folder) and its PNG plots beside it.

    Parameters
    ----------
    run_dir:
        The run folder (``config.json``, ``metrics.jsonl``, ``env.json``, ``checkpoints/``, and
        ``eval/*.json`` written by ``fusereview eval --json`` for test-split metrics, the PR curve
        and the worst images).
    out:
        The Markdown file; plots go to ``<out stem>_images/`` beside it.
    dataset_stats:
        Split statistics; default: read from the project or dataset the config names.
    worst_images:
        How many of the worst test images to draw with overlays.

    Raises
    ------
    RunFolderError
        The run folder cannot be read.
    """
    run = read_run(run_dir)
    out_path = Path(out) if out is not None else run.path / "report.md"
    img_dir = out_path.parent / f"{out_path.stem}_images"
    note = ""
    if dataset_stats is None:
        dataset_stats, note = dataset_stats_for_run(run.config)
    result = ReportResult(markdown=out_path)
    md: list[str] = []

    name = run.path.name
    status = run.end.get("status") if run.end else "running or interrupted (no end record)"
    md.append(f"# Training report: {name}\n")
    md.append(
        f"Status: **{status}**"
        + (f" — {run.end.get('message')}" if run.end and run.end.get("message") else "")
    )
    md.append(
        f"\nRun folder: `{run.path}`  \nReport written {_when(dt.datetime.now(dt.timezone.utc).timestamp())}\n"
    )
    if run.bad_lines:
        md.append(
            f"> metrics.jsonl: lines {run.bad_lines[:10]} are not JSON records of the run format "
            "and were skipped.\n"
        )

    # Configuration and environment
    md.append("## Configuration\n")
    md.append(
        _table(
            ["setting", "value"],
            # times as dates (started_at was a raw Unix time), everything else as written
            [
                [k, _when(v) if k.endswith("_at") and isinstance(v, (int, float)) else f"`{v}`"]
                for k, v in run.config.items()
            ],
        )
    )
    if run.env:
        md.append("\n### Environment\n")
        md.append(_table(["key", "value"], [[k, f"`{v}`"] for k, v in run.env.items()]))

    # Dataset
    md.append("\n## Dataset\n")
    if dataset_stats:
        rows = []
        for split, s in dataset_stats.items():
            rows.append(
                [split, s.images, s.objects, f"{s.objects_per_image:.2f}", s.images_without_objects]
                + [s.sizes[k] for k in SIZES]
            )
        md.append(
            _table(["split", "images", "objects", "objects/image", "images without objects", *SIZES], rows)
        )
        cats = sorted({c for s in dataset_stats.values() for c in s.categories})
        if len(cats) > 1:
            md.append(
                "\n"
                + _table(
                    ["class", *dataset_stats],
                    [[c] + [s.categories.get(c, 0) for s in dataset_stats.values()] for c in cats],
                )
            )
    else:
        md.append(f"Not available: {note}.")

    # Timeline
    md.append("\n## Timeline\n")
    times = [
        r["time"] for r in (*run.steps, *run.vals, *run.epochs) if isinstance(r.get("time"), (int, float))
    ]
    start = (
        run.config.get("started_at")
        if plain_number(run.config.get("started_at"))
        else (min(times) if times else None)
    )
    end_time = run.end.get("time") if run.end and run.end.get("time") else (max(times) if times else None)
    total = (end_time - start) if start is not None and end_time is not None else None
    md.append(f"Started {_when(start)}, last record {_when(end_time)}: {_duration(total)} in all.  ")
    md.append(f"{len(run.steps)} step records, {len(run.epochs)} epochs, {len(run.vals)} validations.\n")
    if run.epochs:
        rows = []
        for e in run.epochs:
            ep = e.get("epoch")
            ips = [
                s["images_per_s"]
                for s in run.steps
                if isinstance(s.get("images_per_s"), (int, float))
                and s.get("epoch") is not None
                and ep is not None
                and ep - 1 <= s["epoch"] < ep
            ]
            rows.append(
                [
                    ep,
                    _duration(e.get("seconds")),
                    format_value(e.get("loss"), 4),
                    f"{statistics.mean(ips):.2f}" if ips else "?",
                ]
            )
        md.append(_table(["epoch", "time", "mean loss", "images/s"], rows))
        secs = [float(e["seconds"]) for e in run.epochs if isinstance(e.get("seconds"), (int, float))]
        if secs:
            md.append(
                f"\nEpoch time: mean {_duration(statistics.mean(secs))}, min {_duration(min(secs))}, max {_duration(max(secs))}."
            )

    # Memory
    md.append("\n## Memory\n")
    mems = [float(s["gpu_mem_gb"]) for s in run.steps if isinstance(s.get("gpu_mem_gb"), (int, float))]
    capacity = run.env.get("gpu_memory_gb")
    if mems:
        cap = (
            f" of {capacity} GB ({max(mems) / capacity:.0%})"
            if isinstance(capacity, (int, float)) and capacity
            else ""
        )
        md.append(f"Peak GPU memory allocated: {max(mems):.2f} GB{cap}.")
    else:
        md.append(f"No GPU memory recorded (device: {run.env.get('device', run.config.get('device', '?'))}).")

    # Plots of training
    if run.steps:
        xs = [s.get("step", i) for i, s in enumerate(run.steps)]

        def column(key: str) -> list[float | None]:
            return [s.get(key) if isinstance(s.get(key), (int, float)) else None for s in run.steps]

        keys = [k for k in _loss_keys(run.steps) if any(v is not None for v in column(k))]
        if keys:
            components = [Series(k.removeprefix("loss_"), xs, column(k)) for k in keys if k != "loss"]
            total = column("loss") if "loss" in keys else [None] * len(xs)
            path = save_figure(loss_figure(xs, total, components), img_dir / "loss.png")
            result.images.append(path)
            md.append(f"\n![loss components]({path.relative_to(out_path.parent).as_posix()})\n")

    # Metrics by epoch
    md.append("\n## Validation metrics by epoch\n")
    best = _best_val(run)
    valid = [v for v in run.vals if v.get("split", "valid") != "test"]
    if valid:
        rows = []
        for v in valid:
            mark = " **best**" if best is v else ""
            rows.append(
                [f"{v.get('epoch')}{mark}"]
                + [format_value(_metric(v, t, n)) for t in ("bbox", "segm") for n in ("AP", "AP50", "AP75")]
            )
        md.append(
            _table(["epoch", "box AP", "box AP50", "box AP75", "mask AP", "mask AP50", "mask AP75"], rows)
        )
        epochs = [v.get("epoch", i) for i, v in enumerate(valid)]
        series = [
            Series(f"{lbl} {n}", epochs, [_metric(v, t, n) for v in valid], markers=True)
            for t, lbl in (("bbox", "box"), ("segm", "mask"))
            for n in ("AP", "AP50")
            if any(_metric(v, t, n) is not None for v in valid)
        ]
        if series:
            ci = ap_interval(_saved(run, "best"))
            band = (ci.low, ci.high, f"{ci.confidence:.0%} CI of the best box AP") if ci else None
            fig = validation_figure(
                epochs, series, best_epoch=best.get("epoch") if best is not None else None, band=band
            )
            path = save_figure(fig, img_dir / "val_metrics.png")
            result.images.append(path)
            md.append(f"\n![validation metrics]({path.relative_to(out_path.parent).as_posix()})\n")
        if best is not None:
            md.append(
                f"\nBest epoch: **{best.get('epoch')}** (box AP {format_value(_metric(best, 'bbox', 'AP'))}, mask AP {format_value(_metric(best, 'segm', 'AP'))})."
            )
    else:
        md.append("No validation was recorded.")

    # Final and test metrics
    md.append("\n## Final and test-split metrics\n")
    columns: list[tuple[str, Mapping[str, Any]]] = []
    if valid:
        columns.append((f"valid, last (epoch {valid[-1].get('epoch')})", valid[-1]))
        if best is not None and best is not valid[-1]:
            columns.append((f"valid, best (epoch {best.get('epoch')})", best))
    for v in run.vals:
        if v.get("split") == "test":
            columns.append((f"test (epoch {v.get('epoch')})", v))
    for f in run.evaluations:
        if f.split != "test" and f is not _chosen_file(run):
            continue  # the validation split's evaluations serve the stability section
        columns.append(
            (
                f"{f.split or 'eval'} ({Path(f.model).name or f.path.stem})",
                {t: e.metrics.values for t, e in f.evaluations.items()},
            )
        )
    if columns:
        for t, lbl in (("bbox", "Boxes"), ("segm", "Masks")):
            if not any(isinstance(c.get(t), Mapping) for _, c in columns):
                continue
            md.append(f"\n### {lbl}\n")
            md.append(
                _table(
                    ["metric", *[c for c, _ in columns]],
                    [[n] + [_cell(c, t, n) for _, c in columns] for n in METRIC_NAMES],
                )
            )
        md.append(
            "\nN/A: no object of that size in the split (pycocotools would print -1); —: not evaluated."
        )
        md.append("\n### Per-size AP\n")
        md.append(
            _table(
                ["metric", *[c for c, _ in columns]],
                [
                    [f"{t} {n}"] + [_cell(c, t, n) for _, c in columns]
                    for t in ("bbox", "segm")
                    for n in ("APs", "APm", "APl")
                ],
            )
        )
    else:
        md.append("No metrics recorded.")
    if not any(f.split == "test" for f in run.evaluations) and not any(
        v.get("split") == "test" for v in run.vals
    ):
        md.append(
            f"\nNo test-split metrics yet: `fusereview eval PROJECT --model {run.path / 'checkpoints' / 'best'} "
            f"--split test --json {run.path / 'eval' / 'test.json'}`, then `fusereview report {run.path}` again."
        )

    # Stability of the best epoch, from the validation split's images (report --evaluate)
    md.append("\n## Stability on the validation split\n")
    stable = stability(
        _saved(run, "best"),
        _saved(run, "last"),
        best_epoch=best.get("epoch") if best is not None else "?",
        last_epoch=valid[-1].get("epoch") if valid else "?",
        run_path=str(run.path),
        epoch_aps=[(v.get("epoch"), _metric(v, "bbox", "AP")) for v in valid],
        start=_saved(run, "start"),
        start_label=str(run.config.get("model_spec") or "the starting model"),
    )
    md.extend(f"- {line}" for line in stable.lines)

    # Error analysis from the saved evaluation of the test split (else the last one saved), on
    # boxes or masks as the evidence supports (report_evidence.choose_evidence)
    chosen = _chosen_file(run)
    evidence = choose_evidence(chosen.evaluations, chosen.no_masks) if chosen is not None else None
    test_eval: Evaluation | None = evidence.evaluation if evidence is not None else None
    eval_split = (chosen.split or "evaluated") if chosen is not None else ""
    if test_eval is not None and evidence is not None:
        n_images = len(test_eval.errors(0.5).images)
        md.append(
            f"\n## Errors on the {eval_split} split ({evidence.kind}, {n_images} "
            f"image{'s' if n_images != 1 else ''})\n"
        )
        md.append(evidence.note + "\n")
        ci = ap_interval(test_eval) if test_eval.n_images > 1 else None
        if ci is not None:
            md.append(
                f"{eval_split.capitalize()} {evidence.noun} AP "
                f"{ci.value:.3f}, {ci.confidence:.0%} CI {ci.low:.3f}…{ci.high:.3f} (bootstrap over "
                f"its {test_eval.n_images} images).\n"
            )
        a50 = test_eval.errors(0.5)
        op = choose_operating_point(
            a50, review_threshold=_review_threshold(run.config), label_base="this model"
        )
        at_op = [errors_at(e, op.threshold) for e in a50.images]
        md.append(
            f"Per-image errors are counted at the operating point, {op.describe()}: what a reviewer "
            "sees. AP and the first rows of this table count every detection, down to the model's "
            "detection threshold.\n"
        )

        def counts_row(iou: str, which: str, c: ErrorCounts, best: str) -> list[Any]:
            return [
                iou,
                which,
                c.tp,
                c.fp,
                c.duplicates,
                c.fn,
                format_value(c.precision),
                format_value(c.recall),
                best,
            ]

        rows = [
            counts_row(
                f"{t:g}",
                "all",
                a.totals,
                f"{a.best_f1.threshold:.2f} (F1 {a.best_f1.f1:.3f})" if a.best_f1 else "N/A",
            )
            for t, a in sorted(test_eval.analyses.items())
        ]
        rows.append(counts_row("0.5", f"score >= {op.threshold:.2f}", totals_at(a50, op.threshold), ""))
        md.append(
            _table(
                ["IoU", "detections", "TP", "FP", "duplicates", "FN", "precision", "recall", "best-F1 score"],
                rows,
            )
        )
        sizes = {s: ErrorCounts() for s in SIZES}
        for e in at_op:
            for kind, items in (
                ("tp", e.true_positives),
                ("fp", e.false_positives),
                ("duplicates", e.duplicates),
                ("fn", e.false_negatives),
            ):
                for o in items:
                    setattr(sizes[o.size], kind, getattr(sizes[o.size], kind) + 1)
        md.append(f"\nBy size, at {op.describe()}, IoU 0.5:\n")
        md.append(
            _table(
                ["size", "TP", "FP", "dup", "FN", "recall"],
                [[s, c.tp, c.fp, c.duplicates, c.fn, format_value(c.recall)] for s, c in sizes.items()],
            )
        )
        curves = [(t, a) for t, a in sorted(test_eval.analyses.items()) if a.pr_curve.scores]
        if curves:
            fig = pr_figure(
                [Series(f"IoU {t:g}", a.pr_curve.recall, a.pr_curve.precision) for t, a in curves],
                [
                    (
                        a.best_f1.recall,
                        a.best_f1.precision,
                        f"best F1 at IoU {t:g} (score >= {a.best_f1.threshold:.2f})",
                    )
                    for t, a in curves
                    if a.best_f1 is not None
                ],
            )
            path = save_figure(fig, img_dir / "pr_curve.png")
            result.images.append(path)
            md.append(f"\n![precision-recall]({path.relative_to(out_path.parent).as_posix()})\n")
        md.append("\n### Worst images\n")
        md.append(
            f"At {op.describe()}, IoU 0.5. Green: found; red: false positive; orange: duplicate; "
            "blue: missed.\n"
        )
        shown = 0
        ranked = sorted(at_op, key=lambda e: (-e.n_errors, -len(e.false_negatives), e.image_id))
        for e in ranked:
            if shown >= worst_images or e.n_errors == 0:
                break
            img_path = test_eval.image_paths.get(e.image_id)
            line = f"- `{e.file_name}`: {len(e.false_negatives)} missed, {len(e.false_positives)} false positives, {len(e.duplicates)} duplicates"
            pixels = _load(img_path, e.width, e.height) if img_path else None
            if pixels is None:
                md.append(line + " (image file not available)")
                shown += 1
                continue
            overlay = draw_overlay(pixels, e, min_width=480)
            overlay = np.vstack([overlay, legend_strip(overlay.shape[1])])
            path = write_png(overlay, img_dir / f"worst_{shown + 1}_{e.image_id}.png")
            result.images.append(path)
            md.append(line + f"\n\n  ![{e.file_name}]({path.relative_to(out_path.parent).as_posix()})\n")
            shown += 1
        if shown == 0:
            md.append(f"No image has an error at {op.describe()}, IoU 0.5.")

    # Checkpoints
    md.append("\n## Checkpoints\n")
    if run.checkpoints:
        groups: dict[str, int] = {}
        for rel, n in run.checkpoints.items():
            parts = Path(rel).parts
            key = "/".join(parts[:2]) if len(parts) > 2 else rel
            groups[key] = groups.get(key, 0) + n
        md.append(_table(["file", "size"], [[f"`{k}`", _size(v)] for k, v in run.checkpoints.items()]))
        md.append("\n" + _table(["folder", "total"], [[f"`{k}`", _size(v)] for k, v in groups.items()]))
    else:
        md.append("No checkpoint files.")

    # Recommendations
    result.recommendations = recommendations(
        run,
        dataset_stats,
        test_eval,
        eval_split,
        evidence=evidence,
        stable=stable,
        review_threshold=_review_threshold(run.config),
    )
    md.append("\n## Recommendations\n")
    if result.recommendations:
        md.extend(f"- {r}" for r in result.recommendations)
    else:
        md.append("Nothing stands out in the numbers.")
    write_text_atomic("\n".join(md) + "\n", out_path)
    return result


def _load(path: str, width: int, height: int) -> np.ndarray | None:
    from fusereview.core.images import load_image

    try:
        return load_image(path, expected_size=(width, height) if width and height else None)
    except (FusereviewError, OSError):
        return None


def recommendations(
    run: RunData,
    stats: Mapping[str, SplitStats] | None,
    test_eval: Evaluation | None,
    eval_split: str = "test",
    *,
    evidence: Evidence | None = None,
    stable: Stability | None = None,
    review_threshold: float | None = None,
) -> list[str]:
    """Advice derived from the run's numbers (each names the numbers it rests on).

    ``evidence``: what ``test_eval`` is (boxes or masks, and why; see
    :func:`~fusereview.evaluation.report_evidence.choose_evidence`); ``stable``: the stability
    sentences of the validation split (the paired bootstrap), repeated when they call for action.
    """
    out: list[str] = []
    if evidence is not None and "much weaker" in evidence.note:
        out.append(evidence.note)
    if run.end and run.end.get("status") in ("failed", "stopped"):
        out.append(
            f"The run {run.end['status']}: {run.end.get('message', '')}. Its last checkpoint can be resumed."
        )
    valid = [v for v in run.vals if v.get("split", "valid") != "test"]
    best = _best_val(run)
    if best is not None and len(valid) >= 3:
        last_epoch = valid[-1].get("epoch") or 0
        best_epoch = best.get("epoch") or 0
        shorter = max(1, math.ceil(best_epoch * 1.3))
        measured = stable.last_vs_best if stable is not None else None
        if last_epoch and best_epoch < 0.6 * last_epoch and measured == "same":
            # the bootstrap says the peak is not above the last epoch: a plateau, not a peak
            out.append(
                f"Validation box AP changed little after epoch {best_epoch}: the best ({best_epoch}) and "
                f"the last epoch ({last_epoch}) show no clear difference on the validation images (see "
                f"Stability), so more epochs of this recipe do not help; about {shorter} epochs would "
                "do, and a gain must come from more, or more varied, training data."
            )
        elif last_epoch and best_epoch < 0.6 * last_epoch and measured != "better":
            unmeasured = (
                ""
                if measured == "worse"
                else " (whether the peak is more than chance is not measured: `report --evaluate`)"
            )
            out.append(
                f"Validation box AP peaked at epoch {best_epoch} of {last_epoch}{unmeasured}: the later epochs did not help. "
                f"Use the best checkpoint (already saved) and train about {shorter} epochs next time, "
                "or lower the learning rate."
            )
    rising = still_rising(
        valid,
        best,
        lambda rec: _metric(rec, "bbox", "AP"),
        finished=bool(run.end and run.end.get("status") == "finished"),
        run_path=str(run.path),
    )
    if rising:
        out.append(rising)
    # the best-vs-last verdict of the validation bootstrap, when it says something to act on
    out.extend(line for line in (stable.lines if stable else []) if "overfit" in line)
    if stable is not None and stable.best_vs_start in ("worse", "same") and stable.start_line:
        out.append(stable.start_line)
    v = (stats or {}).get("valid") or (stats or {}).get("val")
    if v is not None and (v.images < SMALL_VALID_IMAGES or v.objects < SMALL_VALID_OBJECTS):
        one = 1 / v.objects if v.objects else 1.0
        out.append(
            f"The validation split has {v.images} images and {v.objects} objects: one object more or less found moves "
            f"recall by {one:.1%}, so mAP differences of a few points are noise. Add validation images or compare models "
            "on train+valid with cross-validation before trusting a small gain."
        )
    if stats:
        for split, s in stats.items():
            missing = [k for k in SIZES if s.sizes[k] == 0]
            if missing and s.objects:
                out.append(
                    f"The {split} split has no {' or '.join(missing)} objects: AP for those sizes is N/A there, not zero."
                )
                break
    if run.steps:
        losses = [
            s["loss"]
            for s in run.steps
            if isinstance(s.get("loss"), (int, float)) and math.isfinite(s["loss"])
        ]
        if len(losses) >= 10:
            k = max(1, len(losses) // 10)
            first, last = statistics.mean(losses[:k]), statistics.mean(losses[-k:])
            if last >= first:
                out.append(
                    f"Training loss did not go down (first {k} steps {first:.3f}, last {k} {last:.3f}): check the learning rate and the data."
                )
        if any(isinstance(s.get("loss"), float) and not math.isfinite(s["loss"]) for s in run.steps):
            out.append(
                "The loss became NaN or infinite at some step: lower the learning rate or enable gradient clipping."
            )
    if best is not None and test_eval is not None and eval_split == "test":
        val_ap = _metric(best, test_eval.iou_type, "AP")
        test_ap = test_eval.metrics.values.get("AP")
        if val_ap is not None and test_ap is not None and val_ap - test_ap > 0.1:
            out.append(
                f"{eval_split.capitalize()} {test_eval.iou_type} AP {test_ap:.3f} is well below the best validation AP {val_ap:.3f}: the model (or the choice of the best epoch) fits the validation split; more varied data would help."
            )
    if test_eval is not None:
        a = test_eval.errors(0.5)
        op = choose_operating_point(a, review_threshold=review_threshold, label_base="this model")
        c = totals_at(a, op.threshold)  # what a reviewer sees; the no-match rule holds at any score
        kind = f" ({evidence.kind})" if evidence is not None else ""
        if a.totals.tp == 0 and a.totals.fn:
            out.append(
                f"No detection matched any of the {a.totals.fn} objects of the {eval_split} split{kind}: the model is not usable "
                "yet (train longer, check the prompts and the checkpoint)."
            )
        elif a.best_f1 is not None:
            out.append(
                f"On the {eval_split} split{kind} the best F1 ({a.best_f1.f1:.3f}) is at score threshold {a.best_f1.threshold:.2f} (precision {a.best_f1.precision:.3f}, recall {a.best_f1.recall:.3f}): a good default for review."
            )
        if c.duplicates and c.duplicates >= 0.2 * max(1, c.tp):
            out.append(
                f"{c.duplicates} duplicate detections against {c.tp} true positives at {op.describe()}: raise the score threshold or apply NMS before review."
            )
        if c.fn > 2 * max(1, c.fp + c.duplicates):
            out.append(
                f"Misses dominate at {op.describe()} ({c.fn} missed vs {c.fp + c.duplicates} false detections): lower the score threshold, and send the missed objects to review (Evaluation panel)."
            )
        small = a.by_size.get("small")
        if (
            small is not None
            and small.recall is not None
            and c.recall is not None
            and small.recall < c.recall - 0.2
        ):
            out.append(
                f"Small objects are found less often (recall {small.recall:.2f} vs {c.recall:.2f} overall): a larger image size would help."
            )
    mems = [float(s["gpu_mem_gb"]) for s in run.steps if isinstance(s.get("gpu_mem_gb"), (int, float))]
    cap = run.env.get("gpu_memory_gb")
    if mems and isinstance(cap, (int, float)) and cap and max(mems) > 0.9 * cap:
        out.append(
            f"Peak GPU memory {max(mems):.1f} GB is over 90% of {cap} GB: a larger batch will not fit; use gradient accumulation."
        )
    return out
