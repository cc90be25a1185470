"""Comparison of two models (or two runs) on the same split: a verdict, metric changes, per-image deltas.

The verdict rests on the paired bootstrap of ΔAP (:mod:`fusereview.evaluation.bootstrap`); the
per-image statuses are counted at one operating point (:mod:`fusereview.evaluation.operating_point`),
which the output names, never at the evaluator's floor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fusereview.core.errors import FusereviewError
from fusereview.evaluation.bootstrap import CONFIDENCE, RESAMPLES, Interval, paired_bootstrap
from fusereview.evaluation.cocoeval import METRIC_NAMES, Evaluation, format_value
from fusereview.evaluation.errors import ErrorCounts
from fusereview.evaluation.operating_point import OperatingPoint, choose_operating_point, counts_at

# What became of an image going from model A to model B.
STATUSES = ("fixed", "broken", "better", "worse", "unchanged")


class ComparisonError(FusereviewError):
    """Two evaluations cannot be compared (different splits or IoU types)."""


@dataclass
class ImageDelta:
    """One image under both models.

    ``status``: ``fixed`` (errors under A, none under B), ``broken`` (none under A, some under B),
    ``better`` / ``worse`` (fewer / more errors, but some under both), ``unchanged`` (same count).
    """

    image_id: int
    file_name: str
    counts_a: ErrorCounts
    counts_b: ErrorCounts
    status: str

    @property
    def delta(self) -> int:
        """Errors under B minus errors under A (negative: B is better)."""
        return self.counts_b.errors - self.counts_a.errors


@dataclass
class MetricChange:
    """One metric under both models; ``delta`` is ``None`` when either side is N/A."""

    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        """B minus A, or ``None``."""
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass
class Comparison:
    """How model B differs from model A on the same split.

    Attributes
    ----------
    operating_point:
        The score threshold of the per-image statuses and of ``totals_a`` / ``totals_b``.
    intervals:
        ``"AP"``, ``"AP50"``, ``"AP75"`` -> bootstrap interval of B minus A (``None``: not
        available, e.g. N/A on the split or a saved evaluation without per-detection matches).
    verdict:
        One line a user can act on (see :func:`verdict_line`).
    """

    label_a: str
    label_b: str
    iou_type: str
    iou_threshold: float
    metrics: list[MetricChange]
    images: list[ImageDelta]
    totals_a: ErrorCounts = field(default_factory=ErrorCounts)
    totals_b: ErrorCounts = field(default_factory=ErrorCounts)
    operating_point: OperatingPoint = field(default_factory=lambda: OperatingPoint(0.0, "every detection"))
    intervals: dict[str, Interval | None] = field(default_factory=dict)
    verdict: str = ""

    def by_status(self, status: str) -> list[ImageDelta]:
        """The images with ``status`` (one of :data:`STATUSES`)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        return [d for d in self.images if d.status == status]

    def status_counts(self) -> dict[str, int]:
        """Number of images per status."""
        return {s: sum(1 for d in self.images if d.status == s) for s in STATUSES}

    def format_table(self) -> str:
        """The verdict, the metrics side by side with the change and its interval, the counts at the
        operating point, and the per-image summary."""
        width = max(len(self.label_a), len(self.label_b), 8)
        op = self.operating_point
        lines = [
            f"verdict: {self.verdict}",
            f"per-image verdicts at {op.describe()}, IoU {self.iou_threshold:g}",
            "",
            f"{self.iou_type} metrics    {self.label_a:>{width}} {self.label_b:>{width}}   change   "
            f"{CONFIDENCE:.0%} CI of the change",
        ]
        for m in self.metrics:
            change = "N/A" if m.delta is None else f"{m.delta:+.3f}"
            ci = self.intervals.get(m.name)
            shown = f"{ci.low:+.3f}…{ci.high:+.3f}" if ci is not None else ""
            lines.append(
                f"  {m.name:<14} {format_value(m.a):>{width}} {format_value(m.b):>{width}}   {change:>6}   {shown}"
            )
        lines.append("")
        lines.append(f"at {op.describe()}, IoU {self.iou_threshold:g}:")
        for label, key in (
            ("found", "tp"),
            ("false positives", "fp"),
            ("duplicates", "duplicates"),
            ("missed", "fn"),
        ):
            a, b = getattr(self.totals_a, key), getattr(self.totals_b, key)
            lines.append(f"  {label:<14} {a:>{width}} {b:>{width}}   {b - a:+d}")
        a_err, b_err = self.totals_a.errors, self.totals_b.errors
        lines.append(f"  {'errors':<14} {a_err:>{width}} {b_err:>{width}}   {b_err - a_err:+d}")
        lines.append("images: " + ", ".join(f"{n} {s}" for s, n in self.status_counts().items()))
        for status in ("fixed", "broken"):
            names = [d.file_name or str(d.image_id) for d in self.by_status(status)]
            if names:
                shown = ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
                lines.append(f"  {status}: {shown}")
        return "\n".join(line.rstrip() for line in lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "label_a": self.label_a,
            "label_b": self.label_b,
            "iou_type": self.iou_type,
            "iou_threshold": self.iou_threshold,
            "metrics": [{"name": m.name, "a": m.a, "b": m.b, "delta": m.delta} for m in self.metrics],
            "verdict": self.verdict,
            "operating_point": self.operating_point.to_dict(),
            "intervals": {k: (v.to_dict() if v is not None else None) for k, v in self.intervals.items()},
            "status_counts": self.status_counts(),
            "totals_a": self.totals_a.to_dict(),
            "totals_b": self.totals_b.to_dict(),
            "images": [
                {
                    "image_id": d.image_id,
                    "file_name": d.file_name,
                    "status": d.status,
                    "delta": d.delta,
                    "counts_a": asdict(d.counts_a),
                    "counts_b": asdict(d.counts_b),
                }
                for d in self.images
            ],
        }


def image_status(errors_a: int, errors_b: int) -> str:
    """The status of an image with ``errors_a`` errors under A and ``errors_b`` under B."""
    if errors_a > 0 and errors_b == 0:
        return "fixed"
    if errors_a == 0 and errors_b > 0:
        return "broken"
    if errors_b < errors_a:
        return "better"
    if errors_b > errors_a:
        return "worse"
    return "unchanged"


def verdict_line(
    interval: Interval | None,
    delta: float | None,
    fixed: int,
    broken: int,
    *,
    label_b: str = "B",
) -> str:
    """``B is better (ΔAP +0.080, 95% CI +0.030…+0.130, 9 images fixed, 1 broken)``, ``… is worse
    (…)`` or ``no clear difference (…)``: better or worse only when the interval excludes 0."""
    images = f"{fixed} images fixed, {broken} broken"
    if interval is None:
        if delta is None:
            return f"no verdict: AP is N/A on this split ({images})"
        return (
            f"no verdict on AP (ΔAP {delta:+.3f}, no confidence interval: an evaluation without "
            f"per-detection matches, saved by an older version; evaluate again) ({images})"
        )
    if interval.low > 0:
        return f"{label_b} is better (ΔAP {interval.format()}, {images})"
    if interval.high < 0:
        return f"{label_b} is worse (ΔAP {interval.format()}, {images})"
    return f"no clear difference (ΔAP {interval.format()}, {images})"


def compare(
    a: Evaluation,
    b: Evaluation,
    *,
    iou: float = 0.5,
    label_a: str = "A",
    label_b: str = "B",
    score_threshold: float | None = None,
    review_threshold: float | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Compare evaluation ``b`` against the baseline ``a`` (same split, same IoU type).

    Parameters
    ----------
    a, b:
        Evaluations of the same split.
    iou:
        IoU threshold of the per-image statuses.
    label_a, label_b:
        Names used in the verdict and the tables.
    score_threshold:
        The operating point, when the user gives one; else ``review_threshold`` (the project's),
        else the best-F1 score of ``a`` (see :func:`~fusereview.evaluation.operating_point.choose_operating_point`).
    resamples, seed:
        Of the paired bootstrap of ΔAP (seeded: the same inputs give the same verdict).

    Raises
    ------
    ComparisonError
        When the two evaluations are not of the same images or not of the same IoU type.
    """
    if a.iou_type != b.iou_type:
        raise ComparisonError(f"cannot compare a {a.iou_type} evaluation with a {b.iou_type} one")
    errors_a, errors_b = a.errors(iou), b.errors(iou)
    images_b = {e.image_id: e for e in errors_b.images}
    ids_a = [e.image_id for e in errors_a.images]
    if set(ids_a) != set(images_b):
        only_a = sorted(set(ids_a) - set(images_b))[:5]
        only_b = sorted(set(images_b) - set(ids_a))[:5]
        raise ComparisonError(
            f"the two evaluations are not of the same images (only in {label_a}: {only_a}, only in {label_b}: {only_b})"
        )
    op = choose_operating_point(
        errors_a,
        errors_b,
        review_threshold=review_threshold,
        given=score_threshold,
        label_base=label_a,
        label_other=label_b,
    )
    deltas = []
    totals_a, totals_b = ErrorCounts(), ErrorCounts()
    for ea in errors_a.images:
        ca, cb = counts_at(ea, op.threshold), counts_at(images_b[ea.image_id], op.threshold)
        totals_a.add(ca)
        totals_b.add(cb)
        deltas.append(ImageDelta(ea.image_id, ea.file_name, ca, cb, image_status(ca.errors, cb.errors)))
    # Most changed first: the images a reviewer should look at.
    deltas.sort(key=lambda d: (-abs(d.delta), d.image_id))
    metrics = [MetricChange(n, a.metrics.values.get(n), b.metrics.values.get(n)) for n in METRIC_NAMES]
    intervals: dict[str, Interval | None] = {}
    if a.matches is not None and b.matches is not None:
        intervals = paired_bootstrap(a.matches, b.matches, resamples=resamples, seed=seed)
    ap = next(m for m in metrics if m.name == "AP")
    fixed = sum(1 for d in deltas if d.status == "fixed")
    broken = sum(1 for d in deltas if d.status == "broken")
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        iou_type=a.iou_type,
        iou_threshold=iou,
        metrics=metrics,
        images=deltas,
        totals_a=totals_a,
        totals_b=totals_b,
        operating_point=op,
        intervals=intervals,
        verdict=verdict_line(intervals.get("AP"), ap.delta, fixed, broken, label_b=label_b),
    )
