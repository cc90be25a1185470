"""fusereview.evaluation: COCO metrics, per-image errors, model comparison and run reports (no Qt)."""

from __future__ import annotations

from fusereview.evaluation.cocoeval import (
    METRIC_NAMES,
    Evaluation,
    Metrics,
    evaluate,
    format_value,
    per_image_errors,
    run_evaluation,
)
from fusereview.evaluation.errors import ErrorAnalysis, ErrorCounts, ImageErrors
from fusereview.evaluation.remap import EvaluationInputError

__all__ = [
    "METRIC_NAMES",
    "ErrorAnalysis",
    "ErrorCounts",
    "Evaluation",
    "EvaluationInputError",
    "ImageErrors",
    "Metrics",
    "evaluate",
    "format_value",
    "per_image_errors",
    "run_evaluation",
]
