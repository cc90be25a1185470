"""The score threshold at which per-image verdicts are taken (the operating point).

AP is computed over every detection, down to the evaluator's floor (0.05 with ``eval``'s default
model threshold). Counting errors down there counts hundreds of weak false positives nobody
would review, so "errors went from 17 to 366" can be said of a model whose AP went from 0 to
0.48. Per-image verdicts (fixed / broken / better / worse) are therefore counted at one score
threshold, named wherever they are shown: the project's review threshold when it has one, else
the score that maximises F1 on the baseline model's results (at the verdict's IoU).

Counting at a threshold needs no second evaluator run: COCO matches detections greedily in score
order, so the detections at or above a threshold keep exactly the matches they had; below it a
true positive's object becomes a missed one, and false positives and duplicates drop out.
"""

from __future__ import annotations

from dataclasses import dataclass

from fusereview.evaluation.errors import ErrorAnalysis, ErrorCounts, ImageErrors, MissedObject

#: Project setting (``Project.get_setting``) holding the score threshold reviewers work at.
REVIEW_THRESHOLD_SETTING = "review_threshold"
#: Used when neither model found any object (no best-F1 point to take).
FALLBACK_THRESHOLD = 0.5


@dataclass(frozen=True)
class OperatingPoint:
    """A score threshold and where it came from (for the output to name)."""

    threshold: float
    source: str

    def describe(self) -> str:
        """``score >= 0.42 (best F1 of A)``."""
        return f"score >= {self.threshold:.2f} ({self.source})"

    def to_dict(self) -> dict[str, object]:
        """Plain data."""
        return {"threshold": self.threshold, "source": self.source}


def choose_operating_point(
    base: ErrorAnalysis,
    other: ErrorAnalysis | None = None,
    *,
    review_threshold: float | None = None,
    given: float | None = None,
    label_base: str = "A",
    label_other: str = "B",
) -> OperatingPoint:
    """The operating point of a comparison (or of one evaluation when ``other`` is ``None``).

    In order: ``given`` (the user's ``--score-threshold``), the project's ``review_threshold``,
    the best-F1 score of ``base``, of ``other`` when ``base`` found nothing, else
    :data:`FALLBACK_THRESHOLD`.
    """
    if given is not None:
        return OperatingPoint(float(given), "given")
    if review_threshold is not None:
        return OperatingPoint(float(review_threshold), "the project's review threshold")
    if base.best_f1 is not None:
        return OperatingPoint(base.best_f1.threshold, f"best F1 of {label_base}")
    if other is not None and other.best_f1 is not None:
        return OperatingPoint(
            other.best_f1.threshold, f"best F1 of {label_other}; {label_base} found no object"
        )
    return OperatingPoint(FALLBACK_THRESHOLD, "no model found an object, so no best-F1 score")


def counts_at(image: ImageErrors, threshold: float) -> ErrorCounts:
    """One image's outcome counting only detections scoring at least ``threshold``."""
    found = sum(1 for o in image.true_positives if o.score >= threshold)
    return ErrorCounts(
        tp=found,
        fp=sum(1 for o in image.false_positives if o.score >= threshold),
        duplicates=sum(1 for o in image.duplicates if o.score >= threshold),
        fn=len(image.false_negatives) + len(image.true_positives) - found,
    )


def totals_at(analysis: ErrorAnalysis, threshold: float) -> ErrorCounts:
    """The whole split's counts at ``threshold``."""
    total = ErrorCounts()
    for image in analysis.images:
        total.add(counts_at(image, threshold))
    return total


def errors_at(image: ImageErrors, threshold: float) -> ImageErrors:
    """One image's outcomes as if only detections scoring at least ``threshold`` had been made.

    A true positive below the threshold leaves its object missed; the object is shown by its own
    box (``DetectionOutcome.object_bbox``) when the evaluation recorded it, else by the box of
    the detection that matched it (IoU >= the threshold of the analysis).
    """
    kept = [o for o in image.true_positives if o.score >= threshold]
    lost = [
        MissedObject(
            annotation_id=o.annotation_id if o.annotation_id is not None else -1,
            category_id=o.category_id,
            bbox=list(o.object_bbox or o.bbox),
            area=float((o.object_bbox or o.bbox)[2] * (o.object_bbox or o.bbox)[3]),
            size=o.size,
            best_iou=o.iou,
        )
        for o in image.true_positives
        if o.score < threshold
    ]
    return ImageErrors(
        image_id=image.image_id,
        file_name=image.file_name,
        width=image.width,
        height=image.height,
        iou_threshold=image.iou_threshold,
        true_positives=kept,
        false_positives=[o for o in image.false_positives if o.score >= threshold],
        duplicates=[o for o in image.duplicates if o.score >= threshold],
        false_negatives=[*image.false_negatives, *lost],
        ignored=image.ignored,
    )
