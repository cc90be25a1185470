"""Per-image errors: what a labeler needs to see after the numbers.

Every detection (among the 100 best of its image and category, as COCO counts them) ends up as
exactly one of:

* **true positive** — matched to a ground-truth object at the IoU threshold (its IoU is kept);
* **duplicate** — unmatched, but overlapping an object (IoU >= threshold) that a higher-scoring
  detection already took; COCO counts it as a false positive, we show it apart because the fix
  (non-maximum suppression, a higher threshold) differs from the fix of a spurious detection;
* **false positive** — unmatched and not a duplicate (its best IoU with any object is kept, so a
  badly placed box, IoU 0.1-0.5, can be told from a detection of nothing);
* **ignored** — matched to a crowd region (COCO neither rewards nor punishes these).

Every non-crowd ground-truth object is either matched (the true positive's object) or a **false
negative**. The matching itself is COCO's: taken from pycocotools' ``evalImgs`` when that backend
ran, or replayed with the same greedy rule from the evaluator's IoU matrix for faster-coco-eval,
which does not expose ``evalImgs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# COCO's area boundaries (in pixels^2) between small, medium and large objects.
SMALL_MAX = 32.0**2
MEDIUM_MAX = 96.0**2
SIZES = ("small", "medium", "large")


def size_label(area: float) -> str:
    """``"small"`` / ``"medium"`` / ``"large"`` as COCO sizes objects."""
    if area < SMALL_MAX:
        return "small"
    if area < MEDIUM_MAX:
        return "medium"
    return "large"


@dataclass(slots=True)
class DetectionOutcome:
    """One detection and what became of it.

    Attributes
    ----------
    result_index:
        Position of the detection in the caller's results list.
    category_id, score:
        As in the result.
    bbox:
        COCO xywh box of the detection.
    iou:
        For a true positive the IoU with its object; otherwise the best IoU with any object of the
        same category (0 when none overlaps).
    annotation_id:
        The matched object (true positive) or the best-overlapping one; ``None`` when none overlaps.
    size:
        ``small`` / ``medium`` / ``large`` of the matched object, or of the detection itself.
    segmentation:
        The result's mask as given (RLE), for overlays; ``None`` when the result had none.
    object_bbox:
        For a true positive, the matched object's COCO xywh box (so that the object can be shown
        as missed at a score threshold above this detection's); ``None`` otherwise.
    """

    result_index: int
    category_id: int
    score: float
    bbox: list[float]
    iou: float
    annotation_id: int | None
    size: str
    segmentation: Any = None
    object_bbox: list[float] | None = None


@dataclass(slots=True)
class MissedObject:
    """A ground-truth object no detection matched (a false negative)."""

    annotation_id: int
    category_id: int
    bbox: list[float]
    area: float
    size: str
    best_iou: float  # best IoU of any detection of its category: near-misses show as 0.3-0.5
    segmentation: Any = None


@dataclass(slots=True)
class ErrorCounts:
    """Counts of outcomes; ``fp`` excludes duplicates."""

    tp: int = 0
    fp: int = 0
    duplicates: int = 0
    fn: int = 0

    @property
    def errors(self) -> int:
        """False positives + duplicates + false negatives."""
        return self.fp + self.duplicates + self.fn

    @property
    def precision(self) -> float | None:
        """TP / all detections; ``None`` when there is no detection."""
        n = self.tp + self.fp + self.duplicates
        return self.tp / n if n else None

    @property
    def recall(self) -> float | None:
        """TP / all objects; ``None`` when there is no object."""
        n = self.tp + self.fn
        return self.tp / n if n else None

    def add(self, other: ErrorCounts) -> None:
        """Add ``other`` into these counts."""
        self.tp += other.tp
        self.fp += other.fp
        self.duplicates += other.duplicates
        self.fn += other.fn

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with precision and recall."""
        return {**asdict(self), "precision": self.precision, "recall": self.recall}


@dataclass
class ImageErrors:
    """The outcome of every detection and object of one image at one IoU threshold."""

    image_id: int
    file_name: str
    width: int
    height: int
    iou_threshold: float
    true_positives: list[DetectionOutcome] = field(default_factory=list)
    false_positives: list[DetectionOutcome] = field(default_factory=list)
    duplicates: list[DetectionOutcome] = field(default_factory=list)
    false_negatives: list[MissedObject] = field(default_factory=list)
    ignored: int = 0

    @property
    def counts(self) -> ErrorCounts:
        """Counts of this image."""
        return ErrorCounts(
            len(self.true_positives),
            len(self.false_positives),
            len(self.duplicates),
            len(self.false_negatives),
        )

    @property
    def n_errors(self) -> int:
        """False positives + duplicates + false negatives."""
        return len(self.false_positives) + len(self.duplicates) + len(self.false_negatives)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "image_id": self.image_id,
            "file_name": self.file_name,
            "width": self.width,
            "height": self.height,
            "iou_threshold": self.iou_threshold,
            "true_positives": [asdict(o) for o in self.true_positives],
            "false_positives": [asdict(o) for o in self.false_positives],
            "duplicates": [asdict(o) for o in self.duplicates],
            "false_negatives": [asdict(o) for o in self.false_negatives],
            "ignored": self.ignored,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageErrors:
        """Inverse of :meth:`to_dict`."""
        return cls(
            image_id=int(d["image_id"]),
            file_name=str(d.get("file_name", "")),
            width=int(d.get("width", 0)),
            height=int(d.get("height", 0)),
            iou_threshold=float(d["iou_threshold"]),
            true_positives=[DetectionOutcome(**o) for o in d.get("true_positives", [])],
            false_positives=[DetectionOutcome(**o) for o in d.get("false_positives", [])],
            duplicates=[DetectionOutcome(**o) for o in d.get("duplicates", [])],
            false_negatives=[MissedObject(**o) for o in d.get("false_negatives", [])],
            ignored=int(d.get("ignored", 0)),
        )


@dataclass
class PRCurve:
    """Precision and recall as the score threshold goes down (one point per distinct score)."""

    precision: list[float]
    recall: list[float]
    scores: list[float]

    def to_dict(self, max_points: int = 300) -> dict[str, Any]:
        """Plain data, thinned to at most ``max_points`` points (the ends are kept)."""
        n = len(self.scores)
        if n <= max_points:
            idx = list(range(n))
        else:
            idx = sorted(set(np.linspace(0, n - 1, max_points).round().astype(int).tolist()))
        return {
            "precision": [self.precision[i] for i in idx],
            "recall": [self.recall[i] for i in idx],
            "scores": [self.scores[i] for i in idx],
        }


@dataclass
class BestF1:
    """The score threshold with the best F1 (keep detections scoring >= ``threshold``)."""

    threshold: float
    f1: float
    precision: float
    recall: float


@dataclass
class ErrorAnalysis:
    """Per-image errors and their summaries at one IoU threshold."""

    iou_threshold: float
    images: list[ImageErrors]
    totals: ErrorCounts
    by_size: dict[str, ErrorCounts]
    by_category: dict[int, ErrorCounts]
    pr_curve: PRCurve
    best_f1: BestF1 | None

    def worst_images(self, n: int | None = None) -> list[ImageErrors]:
        """Images sorted by number of errors, most first (ties: more false negatives first)."""
        ranked = sorted(self.images, key=lambda e: (-e.n_errors, -len(e.false_negatives), e.image_id))
        return ranked if n is None else ranked[:n]

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "iou_threshold": self.iou_threshold,
            "totals": self.totals.to_dict(),
            "by_size": {k: v.to_dict() for k, v in self.by_size.items()},
            "by_category": {str(k): v.to_dict() for k, v in self.by_category.items()},
            "pr_curve": self.pr_curve.to_dict(),
            "best_f1": asdict(self.best_f1) if self.best_f1 else None,
            "images": [e.to_dict() for e in self.images],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ErrorAnalysis:
        """Inverse of :meth:`to_dict` (the PR curve comes back thinned)."""

        def counts(c: Mapping[str, Any]) -> ErrorCounts:
            return ErrorCounts(int(c["tp"]), int(c["fp"]), int(c["duplicates"]), int(c["fn"]))

        pr = d["pr_curve"]
        return cls(
            iou_threshold=float(d["iou_threshold"]),
            images=[ImageErrors.from_dict(e) for e in d["images"]],
            totals=counts(d["totals"]),
            by_size={k: counts(v) for k, v in d["by_size"].items()},
            by_category={int(k): counts(v) for k, v in d["by_category"].items()},
            pr_curve=PRCurve(list(pr["precision"]), list(pr["recall"]), list(pr["scores"])),
            best_f1=BestF1(**d["best_f1"]) if d.get("best_f1") else None,
        )


@dataclass(slots=True)
class PairMatch:
    """COCO's matching of one (image, category) pair at one IoU threshold, area range "all".

    Detections are in score order (best first, at most ``maxDets``), objects in the column order of
    the evaluator's IoU matrix.
    """

    image: int  # renumbered ids, as the evaluator saw them
    category: int
    dt_ids: np.ndarray
    dt_gt_col: np.ndarray  # column of the matched object, -1 when unmatched
    dt_ignored: np.ndarray
    gt_ids: np.ndarray
    gt_matched: np.ndarray
    gt_ignored: np.ndarray
    ious: np.ndarray  # (D, G); shape (D, 0) or (0, G) when one side is empty


def match_pair(ious: np.ndarray, gt_crowd: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Replay pycocotools' greedy matching (``evaluateImg``, area "all") on one IoU matrix.

    Parameters
    ----------
    ious:
        (D, G) IoUs, detections sorted by score (best first), objects in any fixed order.
    gt_crowd:
        (G,) crowd flags; in the area range "all" these are exactly the ignored objects.
    threshold:
        The IoU threshold.

    Returns
    -------
    dt_gt_col, gt_matched
        The matched column of each detection (-1 when none) and whether each object was matched.
    """
    d_count, g_count = ious.shape
    dt_gt = np.full(d_count, -1, dtype=np.int64)
    gt_matched = np.zeros(g_count, dtype=bool)
    if d_count == 0 or g_count == 0:
        return dt_gt, gt_matched
    # pycocotools visits non-ignored objects first (stable sort on the ignore flag).
    order = np.argsort(gt_crowd.astype(np.int8), kind="mergesort")
    crowd = gt_crowd.astype(bool)
    for d in range(d_count):
        best = min(threshold, 1 - 1e-10)
        m = -1
        for g in order:
            if gt_matched[g] and not crowd[g]:
                continue
            if m > -1 and not crowd[m] and crowd[g]:
                break
            if ious[d, g] < best:
                continue
            best = ious[d, g]
            m = int(g)
        if m == -1:
            continue
        dt_gt[d] = m
        gt_matched[m] = True
    return dt_gt, gt_matched


def best_f1_point(curve: PRCurve) -> BestF1 | None:
    """The point of ``curve`` with the highest F1; ``None`` when no point has a true positive."""
    if not curve.scores:
        return None
    p = np.asarray(curve.precision)
    r = np.asarray(curve.recall)
    denom = p + r
    f1 = np.where(denom > 0, 2 * p * r / np.where(denom > 0, denom, 1), 0.0)
    i = int(np.argmax(f1))  # first maximum: the highest threshold reaching it
    if f1[i] <= 0:
        return None  # no true positive at any threshold: there is no best threshold to speak of
    return BestF1(
        threshold=float(curve.scores[i]), f1=float(f1[i]), precision=float(p[i]), recall=float(r[i])
    )


def pr_curve_from_outcomes(scores: np.ndarray, is_tp: np.ndarray, n_objects: int) -> PRCurve:
    """Raw (not interpolated) precision / recall at every distinct score, pooled over categories."""
    if scores.size == 0:
        return PRCurve([], [], [])
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    tp = np.cumsum(is_tp[order])
    n = np.arange(1, s.size + 1)
    # One point per distinct score: a threshold keeps every detection of equal score together.
    last = np.r_[s[1:] != s[:-1], True]
    precision = (tp / n)[last]
    recall = (tp / n_objects if n_objects else np.zeros_like(tp, dtype=float))[last]
    return PRCurve(precision.tolist(), recall.tolist(), s[last].tolist())
