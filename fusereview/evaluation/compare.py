"""Comparison of two models (or two runs) on the same split: per-image delta and metric change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fusereview.core.errors import FusereviewError
from fusereview.evaluation.cocoeval import METRIC_NAMES, Evaluation, format_value
from fusereview.evaluation.errors import ErrorCounts

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
    """How model B differs from model A on the same split."""

    label_a: str
    label_b: str
    iou_type: str
    iou_threshold: float
    metrics: list[MetricChange]
    images: list[ImageDelta]
    totals_a: ErrorCounts = field(default_factory=ErrorCounts)
    totals_b: ErrorCounts = field(default_factory=ErrorCounts)

    def by_status(self, status: str) -> list[ImageDelta]:
        """The images with ``status`` (one of :data:`STATUSES`)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        return [d for d in self.images if d.status == status]

    def status_counts(self) -> dict[str, int]:
        """Number of images per status."""
        return {s: sum(1 for d in self.images if d.status == s) for s in STATUSES}

    def format_table(self) -> str:
        """A text table: the metrics side by side, then the per-image summary."""
        width = max(len(self.label_a), len(self.label_b), 8)
        lines = [f"{self.iou_type} metrics    {self.label_a:>{width}} {self.label_b:>{width}}   change"]
        for m in self.metrics:
            change = "N/A" if m.delta is None else f"{m.delta:+.3f}"
            lines.append(
                f"  {m.name:<14} {format_value(m.a):>{width}} {format_value(m.b):>{width}}   {change}"
            )
        lines.append(
            f"errors at IoU {self.iou_threshold:g} (FP+dup+FN): "
            f"{self.totals_a.errors} -> {self.totals_b.errors}; images: "
            + ", ".join(f"{n} {s}" for s, n in self.status_counts().items())
        )
        for status in ("fixed", "broken"):
            names = [d.file_name or str(d.image_id) for d in self.by_status(status)]
            if names:
                shown = ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
                lines.append(f"  {status}: {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "label_a": self.label_a,
            "label_b": self.label_b,
            "iou_type": self.iou_type,
            "iou_threshold": self.iou_threshold,
            "metrics": [{"name": m.name, "a": m.a, "b": m.b, "delta": m.delta} for m in self.metrics],
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


def compare(
    a: Evaluation, b: Evaluation, *, iou: float = 0.5, label_a: str = "A", label_b: str = "B"
) -> Comparison:
    """Compare evaluation ``b`` against the baseline ``a`` (same split, same IoU type).

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
    deltas = []
    for ea in errors_a.images:
        eb = images_b[ea.image_id]
        deltas.append(
            ImageDelta(
                ea.image_id, ea.file_name, ea.counts, eb.counts, image_status(ea.n_errors, eb.n_errors)
            )
        )
    # Most changed first: the images a reviewer should look at.
    deltas.sort(key=lambda d: (-abs(d.delta), d.image_id))
    metrics = [MetricChange(n, a.metrics.values.get(n), b.metrics.values.get(n)) for n in METRIC_NAMES]
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        iou_type=a.iou_type,
        iou_threshold=iou,
        metrics=metrics,
        images=deltas,
        totals_a=errors_a.totals,
        totals_b=errors_b.totals,
    )
