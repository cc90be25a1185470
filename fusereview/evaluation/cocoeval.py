"""COCO metrics (the 12 standard numbers) and per-image errors from one evaluator run.

The evaluator is pycocotools (the reference) or, on request, faster-coco-eval (same numbers, C++).
It always runs on id-remapped copies (see :mod:`fusereview.evaluation.remap`) so that Roboflow's
id 0 is evaluated correctly, and the per-image errors are read from the very same run (its
``evalImgs`` and IoU matrices) instead of a second matching pass.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fusereview.core.errors import FusereviewError
from fusereview.evaluation.bootstrap import IOU_THRESHOLDS, MatchTable
from fusereview.evaluation.errors import (
    SIZES,
    DetectionOutcome,
    ErrorAnalysis,
    ErrorCounts,
    ImageErrors,
    MissedObject,
    PairMatch,
    best_f1_point,
    match_pair,
    pr_curve_from_outcomes,
    size_label,
)
from fusereview.evaluation.remap import RemappedData, remap

METRIC_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)
BACKENDS = ("pycocotools", "faster")
DEFAULT_IOU_THRESHOLDS = (0.5, 0.75)

# One line per metric, in pycocotools' summary wording, so the table reads like the reference.
_SUMMARY_LINES = (
    ("Average Precision", "(AP)", "0.50:0.95", "all", 100),
    ("Average Precision", "(AP)", "0.50", "all", 100),
    ("Average Precision", "(AP)", "0.75", "all", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "small", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "medium", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "large", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 1),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 10),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "small", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "medium", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "large", 100),
)


class BackendUnavailableError(FusereviewError):
    """The requested evaluator backend is not installed."""


def format_value(value: float | None, digits: int = 3) -> str:
    """A metric for people: ``N/A`` when there was nothing to measure (never -1 or 0)."""
    return "N/A" if value is None else f"{value:.{digits}f}"


@dataclass
class Metrics:
    """The 12 COCO numbers; ``None`` means N/A (e.g. no object of that size in the split)."""

    values: dict[str, float | None]
    iou_type: str = "bbox"

    def __getitem__(self, name: str) -> float | None:
        return self.values[name]

    def format_table(self) -> str:
        """The table as pycocotools' ``summarize()`` prints it, with N/A instead of -1.000."""
        lines = []
        for name, (title, short, iou, area, max_dets) in zip(METRIC_NAMES, _SUMMARY_LINES, strict=True):
            value = self.values.get(name)
            shown = "  N/A" if value is None else f"{value:0.3f}"
            lines.append(
                f" {title:<18} {short} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = {shown}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, float | None]:
        """The 12 names -> value or ``None`` (the ``metrics.jsonl`` format)."""
        return {name: self.values.get(name) for name in METRIC_NAMES}


@dataclass
class Evaluation:
    """Everything one evaluation of results against a split found.

    Attributes
    ----------
    iou_type, backend:
        What was evaluated and with which evaluator.
    metrics:
        The 12 COCO numbers.
    category_ap:
        Original category id -> ``{"AP": ..., "AP50": ...}`` (``None`` = N/A).
    categories:
        Original category id -> name.
    analyses:
        IoU threshold -> per-image errors and their summaries.
    image_paths:
        Original image id -> image file path, when the caller knew them (for overlays).
    matches:
        Every scored detection's outcome at the ten IoU thresholds (for the paired bootstrap of
        :mod:`fusereview.evaluation.bootstrap`); ``None`` in files saved before it existed.
    """

    iou_type: str
    backend: str
    metrics: Metrics
    category_ap: dict[int, dict[str, float | None]]
    categories: dict[int, str]
    analyses: dict[float, ErrorAnalysis]
    n_images: int = 0
    n_objects: int = 0
    n_detections: int = 0
    image_paths: dict[int, str] = field(default_factory=dict)
    matches: MatchTable | None = None

    def errors(self, iou: float = 0.5) -> ErrorAnalysis:
        """The error analysis at IoU threshold ``iou`` (one of those evaluated)."""
        for key, analysis in self.analyses.items():
            if abs(key - iou) < 1e-9:
                return analysis
        raise KeyError(f"no error analysis at IoU {iou}; have {sorted(self.analyses)}")

    def format_errors(self, worst: int = 10) -> str:
        """Per-image error counts as text: totals per IoU, per size, best F1, the worst images."""
        lines = []
        for t, a in sorted(self.analyses.items()):
            c = a.totals
            bf = a.best_f1
            best = f"; best F1 {bf.f1:.3f} at score >= {bf.threshold:.2f}" if bf else ""
            lines.append(
                f"IoU {t:g}: {c.tp} true positives, {c.fp} false positives, {c.duplicates} duplicates, "
                f"{c.fn} missed (precision {format_value(c.precision)}, recall {format_value(c.recall)}){best}"
            )
            sizes = ", ".join(
                f"{s} {v.tp}/{v.tp + v.fn} found, {v.fp + v.duplicates} false"
                for s, v in a.by_size.items()
                if v.tp + v.fn + v.fp + v.duplicates
            )
            if sizes:
                lines.append(f"  by size: {sizes}")
            # Classes with neither objects nor detections (Roboflow's placeholder) say nothing.
            used = {k: v for k, v in a.by_category.items() if v.tp + v.fn + v.fp + v.duplicates}
            if len(used) > 1:
                cats = ", ".join(
                    f"{self.categories.get(k, k)} {v.tp}/{v.tp + v.fn} found, {v.fp + v.duplicates} false"
                    for k, v in used.items()
                )
                lines.append(f"  by class: {cats}")
        a = self.errors(min(self.analyses)) if self.analyses else None
        if a is not None:
            bad = [e for e in a.worst_images(worst) if e.n_errors]
            n_bad = sum(1 for e in a.images if e.n_errors)
            lines.append(f"images with errors at IoU {a.iou_threshold:g}: {n_bad} of {len(a.images)}")
            for e in bad:
                lines.append(
                    f"  {e.file_name or e.image_id}: {len(e.false_negatives)} missed, "
                    f"{len(e.false_positives)} false positives, {len(e.duplicates)} duplicates"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data (what ``fusereview eval --json`` writes)."""
        return {
            "iou_type": self.iou_type,
            "backend": self.backend,
            "metrics": self.metrics.to_dict(),
            "category_ap": {str(k): v for k, v in self.category_ap.items()},
            "categories": {str(k): v for k, v in self.categories.items()},
            "n_images": self.n_images,
            "n_objects": self.n_objects,
            "n_detections": self.n_detections,
            "image_paths": {str(k): v for k, v in self.image_paths.items()},
            "analyses": {f"{k:g}": a.to_dict() for k, a in self.analyses.items()},
            "matches": self.matches.to_dict() if self.matches is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            iou_type=str(d["iou_type"]),
            backend=str(d.get("backend", "")),
            metrics=Metrics(dict(d["metrics"]), str(d["iou_type"])),
            category_ap={int(k): dict(v) for k, v in d.get("category_ap", {}).items()},
            categories={int(k): str(v) for k, v in d.get("categories", {}).items()},
            analyses={float(k): ErrorAnalysis.from_dict(a) for k, a in d.get("analyses", {}).items()},
            n_images=int(d.get("n_images", 0)),
            n_objects=int(d.get("n_objects", 0)),
            n_detections=int(d.get("n_detections", 0)),
            image_paths={int(k): str(v) for k, v in d.get("image_paths", {}).items()},
            matches=MatchTable.from_dict(d["matches"]) if d.get("matches") else None,
        )


def faster_coco_eval_available() -> bool:
    """Whether the optional faster-coco-eval backend can be used."""
    try:
        import faster_coco_eval  # noqa: F401
    except ImportError:
        return False
    return True


def run_evaluation(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    iou_type: str = "bbox",
    backend: str = "pycocotools",
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    score_threshold: float = 0.0,
    missing_masks: str = "error",
    image_paths: Mapping[int, str] | None = None,
    gt_name: str = "ground truth",
    results_name: str = "results",
) -> Evaluation:
    """Evaluate ``results`` against ``gt``: the 12 COCO numbers and per-image errors.

    Parameters
    ----------
    gt:
        COCO dict of the split (any ids, 0 included).
    results:
        COCO results (``image_id``, ``category_id``, ``score``, ``bbox`` and/or ``segmentation``).
    iou_type:
        ``"bbox"`` or ``"segm"``.
    backend:
        ``"pycocotools"`` (reference) or ``"faster"`` (faster-coco-eval, must be installed).
    iou_thresholds:
        Thresholds of the per-image error analyses; each must be one of COCO's 0.50:0.05:0.95.
    score_threshold:
        Results scoring below it are left out entirely (metrics included).
    missing_masks:
        segm only: ``"error"`` refuses ground truth without a mask; ``"box"`` uses its box as mask.
    image_paths:
        Image id -> file path, kept for overlays.
    gt_name, results_name:
        Names of the inputs for error messages (file paths).

    Raises
    ------
    EvaluationInputError
        A field of the ground truth or of the results cannot be used (the message names it).
    BackendUnavailableError
        ``backend="faster"`` without faster-coco-eval installed.
    """
    if backend not in BACKENDS:
        raise FusereviewError(f"unknown evaluation backend {backend!r}; choose from {BACKENDS}")
    data = remap(
        gt,
        results,
        iou_type=iou_type,
        score_threshold=score_threshold,
        missing_masks=missing_masks,
        gt_name=gt_name,
        results_name=results_name,
    )
    if backend == "faster":
        ev, coco_dt, pairs, matches = _run_faster(data, iou_type, iou_thresholds)
    else:
        ev, coco_dt, pairs, matches = _run_pycocotools(data, iou_type, iou_thresholds)

    stats = np.asarray(ev.stats, dtype=float)[:12]
    # pycocotools writes -1 where nothing could be measured (e.g. no large objects): that is N/A.
    values = {name: (None if v == -1 else float(v)) for name, v in zip(METRIC_NAMES, stats, strict=True)}
    metrics = Metrics(values, iou_type)
    category_ap = _category_ap(ev, data)
    categories = {data.original_category_id(i + 1): c["name"] for i, c in enumerate(data.gt["categories"])}

    analyses = {float(t): _analysis(data, coco_dt, pairs[float(t)], float(t)) for t in iou_thresholds}
    n_objects = sum(1 for a in data.gt["annotations"] if not a["iscrowd"])
    return Evaluation(
        iou_type=iou_type,
        backend=backend,
        metrics=metrics,
        category_ap=category_ap,
        categories=categories,
        analyses=analyses,
        n_images=len(data.gt["images"]),
        n_objects=n_objects,
        n_detections=len(data.results),
        image_paths={int(k): str(v) for k, v in (image_paths or {}).items()},
        matches=matches,
    )


def evaluate(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    iou_type: str = "bbox",
    backend: str = "pycocotools",
    missing_masks: str = "error",
) -> Metrics:
    """The 12 COCO numbers of ``results`` against ``gt`` (ids remapped so that 0 is safe).

    See :func:`run_evaluation` for the parameters and errors.
    """
    return run_evaluation(
        gt, results, iou_type=iou_type, backend=backend, missing_masks=missing_masks
    ).metrics


def per_image_errors(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    iou: float = 0.5,
    score_threshold: float = 0.0,
    *,
    iou_type: str = "bbox",
) -> list[ImageErrors]:
    """True positives (with IoU), false positives, duplicates and false negatives of every image.

    See :func:`run_evaluation` for the parameters and errors.
    """
    ev = run_evaluation(
        gt, results, iou_type=iou_type, iou_thresholds=(iou,), score_threshold=score_threshold
    )
    return ev.errors(iou).images


# --- backends ------------------------------------------------------------------------------------


def _threshold_indices(iou_thrs: np.ndarray, thresholds: Sequence[float]) -> dict[float, int]:
    out = {}
    for t in thresholds:
        hits = np.where(np.isclose(iou_thrs, t))[0]
        if len(hits) == 0:
            raise FusereviewError(f"IoU threshold {t} is not one of COCO's thresholds 0.50, 0.55, ..., 0.95")
        out[float(t)] = int(hits[0])
    return out


def _run_pycocotools(
    data: RemappedData, iou_type: str, thresholds: Sequence[float]
) -> tuple[COCOeval, COCO, dict[float, list[PairMatch]], MatchTable]:
    # pycocotools prints progress on stdout; the command prints its own table instead.
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data.gt
        coco_gt.createIndex()
        if data.results:
            coco_dt = coco_gt.loadRes(data.results)
        else:  # loadRes cannot take an empty list (it reads results[0])
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": data.gt["images"],
                "categories": data.gt["categories"],
                "annotations": [],
            }
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()

    p = ev.params
    t_index = _threshold_indices(p.iouThrs, thresholds)
    n_area, n_img = len(p.areaRng), len(p.imgIds)
    a_all = p.areaRngLbl.index("all")
    pairs: dict[float, list[PairMatch]] = {t: [] for t in t_index}
    table = _TableBuilder(data, p.catIds, n_img)
    # Every object belongs to one (image, category) pair: one array maps its id to its column.
    col_of_id = np.full(len(data.gt["annotations"]) + 1, -1, dtype=np.int64)
    for gts in ev._gts.values():
        for j, g in enumerate(gts):
            col_of_id[g["id"]] = j
    for k, cat in enumerate(p.catIds):
        for i, img in enumerate(p.imgIds):
            e = ev.evalImgs[k * n_area * n_img + a_all * n_img + i]
            if e is None:
                continue
            table.add(
                k,
                i,
                e["dtScores"],
                np.asarray(e["dtMatches"]) > 0,
                np.asarray(e["dtIgnore"], dtype=bool),
                int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)),
            )
            gts = ev._gts[img, cat]
            gt_ids = np.fromiter((g["id"] for g in gts), dtype=np.int64, count=len(gts))
            # evalImgs lists objects ignore-last; the IoU matrix keeps the _gts order: map between them.
            e_cols = col_of_id[np.asarray(e["gtIds"], dtype=np.int64)]
            dt_ids = np.asarray(e["dtIds"], dtype=np.int64)
            ious = ev.ious[img, cat]
            ious = np.asarray(ious, dtype=float) if len(ious) else np.zeros((len(dt_ids), len(gt_ids)))
            gt_ignored = np.zeros(len(gt_ids), dtype=bool)
            gt_ignored[e_cols] = np.asarray(e["gtIgnore"], dtype=bool)
            for t, ti in t_index.items():
                dtm = e["dtMatches"][ti].astype(np.int64)
                dt_gt_col = np.where(dtm > 0, col_of_id[dtm], -1)
                gt_matched = np.zeros(len(gt_ids), dtype=bool)
                gt_matched[e_cols] = e["gtMatches"][ti] > 0
                pairs[t].append(
                    PairMatch(
                        int(img),
                        int(cat),
                        dt_ids,
                        dt_gt_col,
                        np.asarray(e["dtIgnore"][ti], dtype=bool),
                        gt_ids,
                        gt_matched,
                        gt_ignored,
                        ious,
                    )
                )
    return ev, coco_dt, pairs, table.build()


def _run_faster(
    data: RemappedData, iou_type: str, thresholds: Sequence[float]
) -> tuple[Any, Any, dict[float, list[PairMatch]], MatchTable]:
    try:
        from faster_coco_eval import COCO as FasterCOCO
        from faster_coco_eval import COCOeval_faster
    except ImportError as exc:
        raise BackendUnavailableError(
            "the 'faster' evaluation backend needs faster-coco-eval: pip install faster-coco-eval"
        ) from exc

    def quiet(*_args: Any, **_kwargs: Any) -> None:
        return None

    coco_gt = FasterCOCO(data.gt, print_function=quiet)
    coco_dt = coco_gt.loadRes(data.results)
    ev = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=quiet)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()

    p = ev.params
    t_index = _threshold_indices(np.asarray(p.iouThrs), thresholds)
    max_det = int(p.maxDets[-1])
    # faster-coco-eval keeps no evalImgs; rebuild the evaluator's per-pair lists in its own order
    # (annotation order; detections by score, stable, best maxDets) and replay COCO's matching on
    # the IoU matrices it computed.
    gts: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for ann in data.gt["annotations"]:
        gts[ann["image_id"], ann["category_id"]].append(ann)
    dts: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for ann in coco_dt.dataset["annotations"]:
        dts[ann["image_id"], ann["category_id"]].append(ann)
    pairs: dict[float, list[PairMatch]] = {t: [] for t in t_index}
    cat_ids = [int(c) for c in p.catIds]
    table = _TableBuilder(data, cat_ids, len(data.gt["images"]))
    for key in sorted(set(gts) | set(dts), key=lambda k: (k[1], k[0])):
        g_list = gts.get(key, [])
        d_list = dts.get(key, [])
        order = np.argsort([-d["score"] for d in d_list], kind="mergesort")[:max_det]
        dt_ids = np.array([d_list[i]["id"] for i in order], dtype=np.int64)
        gt_ids = np.array([g["id"] for g in g_list], dtype=np.int64)
        crowd = np.array([bool(g["iscrowd"]) for g in g_list], dtype=bool)
        ious = ev.ious.get(key, [])
        ious = np.asarray(ious, dtype=float) if len(ious) else np.zeros((len(dt_ids), len(gt_ids)))
        replayed = {}
        for t in IOU_THRESHOLDS:
            dt_gt_col, gt_matched = match_pair(ious, crowd, float(t))
            dt_ignored = np.array([c >= 0 and crowd[c] for c in dt_gt_col], dtype=bool)
            replayed[round(float(t), 2)] = (dt_gt_col, gt_matched, dt_ignored)
        for t in t_index:
            dt_gt_col, gt_matched, dt_ignored = replayed[round(t, 2)]
            pairs[t].append(
                PairMatch(key[0], key[1], dt_ids, dt_gt_col, dt_ignored, gt_ids, gt_matched, crowd, ious)
            )
        cols = [replayed[round(float(t), 2)] for t in IOU_THRESHOLDS]
        table.add(
            cat_ids.index(key[1]),
            key[0] - 1,
            [d_list[i]["score"] for i in order],
            np.array([c[0] >= 0 for c in cols], dtype=bool).reshape(len(cols), -1),
            np.array([c[2] for c in cols], dtype=bool).reshape(len(cols), -1),
            int(np.count_nonzero(~crowd)),
        )
    return ev, coco_dt, pairs, table.build()


class _TableBuilder:
    """Collects the evaluator's per-pair outcomes into a :class:`MatchTable` (original ids)."""

    def __init__(self, data: RemappedData, cat_ids: Sequence[int], n_images: int) -> None:
        self.image_ids = np.array([data.original_image_id(i + 1) for i in range(n_images)], dtype=np.int64)
        self.category_ids = np.array([data.original_category_id(int(c)) for c in cat_ids], dtype=np.int64)
        self.objects = np.zeros((n_images, len(cat_ids)), dtype=np.int64)
        self.parts: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(
        self, k: int, i: int, scores: Sequence[float], matched: np.ndarray, ignored: np.ndarray, objects: int
    ) -> None:
        """One (category ``k``, image ``i``) pair: ``matched``/``ignored`` are ``(10, D)``."""
        self.objects[i, k] = objects
        if len(scores):
            self.parts.append((k, i, np.asarray(scores, dtype=np.float64), matched.T, ignored.T))

    def build(self) -> MatchTable:
        """The table."""
        t = IOU_THRESHOLDS.size
        if self.parts:
            det_cat = np.concatenate([np.full(p[2].size, p[0]) for p in self.parts])
            det_img = np.concatenate([np.full(p[2].size, p[1]) for p in self.parts])
            scores = np.concatenate([p[2] for p in self.parts])
            matched = np.concatenate([p[3] for p in self.parts]).reshape(-1, t)
            ignored = np.concatenate([p[4] for p in self.parts]).reshape(-1, t)
        else:
            det_cat = det_img = np.zeros(0, dtype=np.int64)
            scores = np.zeros(0)
            matched = ignored = np.zeros((0, t), dtype=bool)
        return MatchTable(
            image_ids=self.image_ids,
            category_ids=self.category_ids,
            det_image=det_img.astype(np.int64),
            det_category=det_cat.astype(np.int64),
            det_score=scores,
            det_matched=matched.astype(bool),
            det_ignored=ignored.astype(bool),
            objects=self.objects,
        )


def _category_ap(ev: Any, data: RemappedData) -> dict[int, dict[str, float | None]]:
    precision = np.asarray(ev.eval["precision"])  # [T, R, K, A, M]
    t50 = int(np.where(np.isclose(np.asarray(ev.params.iouThrs), 0.5))[0][0])
    out: dict[int, dict[str, float | None]] = {}
    for k, cat in enumerate(ev.params.catIds):
        p_all = precision[:, :, k, 0, -1]
        p_50 = p_all[t50]
        out[data.original_category_id(int(cat))] = {
            "AP": float(p_all[p_all > -1].mean()) if (p_all > -1).any() else None,
            "AP50": float(p_50[p_50 > -1].mean()) if (p_50 > -1).any() else None,
        }
    return out


# --- per-image errors ----------------------------------------------------------------------------


def _analysis(data: RemappedData, coco_dt: Any, pairs: list[PairMatch], threshold: float) -> ErrorAnalysis:
    gt_anns = data.gt["annotations"]
    orig_anns = data.original_annotations
    dt_anns = coco_dt.anns
    per_image: dict[int, ImageErrors] = {}
    for i, img in enumerate(data.images):
        per_image[i + 1] = ImageErrors(
            image_id=data.image_ids[i],
            file_name=str(img.get("file_name", "")),
            width=int(img["width"]),
            height=int(img["height"]),
            iou_threshold=threshold,
        )
    by_size = {s: ErrorCounts() for s in SIZES}
    by_category: dict[int, ErrorCounts] = {cid: ErrorCounts() for cid in data.category_ids}
    scores: list[float] = []
    flags: list[bool] = []

    for pm in pairs:
        image = per_image[pm.image]
        category = data.original_category_id(pm.category)
        cat_counts = by_category[category]
        ious = pm.ious
        n_dt, n_gt = ious.shape
        usable = ~pm.gt_ignored
        # Per pair, not per detection: the best usable object of each detection and whether it
        # overlaps an object already taken (a duplicate).
        if n_gt and n_dt:
            masked = np.where(usable[None, :], ious, -1.0)
            best_col = masked.argmax(axis=1)
            best_iou = masked[np.arange(n_dt), best_col]
            duplicate = (ious[:, usable & pm.gt_matched] >= threshold).any(axis=1)
        else:
            best_col = np.zeros(n_dt, dtype=np.int64)
            best_iou = np.zeros(n_dt)
            duplicate = np.zeros(n_dt, dtype=bool)
        cols = pm.dt_gt_col.tolist()
        ignored = pm.dt_ignored.tolist()
        for d, dt_id in enumerate(pm.dt_ids.tolist()):
            if ignored[d]:
                image.ignored += 1
                continue
            det = dt_anns[dt_id]
            index = data.result_index[dt_id - 1]
            seg = data.original_results[index].get("segmentation")
            col = cols[d]
            score = float(det["score"])
            if col >= 0:
                gid = int(pm.gt_ids[col])
                size = size_label(gt_anns[gid - 1]["area"])
                tp = DetectionOutcome(
                    index,
                    category,
                    score,
                    list(det["bbox"]),
                    float(ious[d, col]),
                    data.annotation_ids[gid - 1],
                    size,
                    seg,
                    object_bbox=[float(v) for v in orig_anns[gid - 1]["bbox"]],
                )
                image.true_positives.append(tp)
                cat_counts.tp += 1
                by_size[size].tp += 1
                scores.append(score)
                flags.append(True)
                continue
            b_iou = float(best_iou[d])
            ann_id = data.annotation_ids[int(pm.gt_ids[best_col[d]]) - 1] if b_iou > 0 else None
            size = size_label(float(det["area"]))
            outcome = DetectionOutcome(
                index, category, score, list(det["bbox"]), max(b_iou, 0.0), ann_id, size, seg
            )
            if duplicate[d]:
                image.duplicates.append(outcome)
                cat_counts.duplicates += 1
                by_size[size].duplicates += 1
            else:
                image.false_positives.append(outcome)
                cat_counts.fp += 1
                by_size[size].fp += 1
            scores.append(score)
            flags.append(False)
        missed = np.where(usable & ~pm.gt_matched)[0]
        if missed.size:
            best_by_object = ious.max(axis=0) if n_dt else np.zeros(n_gt)
            for col in missed.tolist():
                gid = int(pm.gt_ids[col])
                ann = gt_anns[gid - 1]
                size = size_label(ann["area"])
                image.false_negatives.append(
                    MissedObject(
                        data.annotation_ids[gid - 1],
                        category,
                        list(ann["bbox"]),
                        float(ann["area"]),
                        size,
                        float(best_by_object[col]),
                        orig_anns[gid - 1].get("segmentation"),
                    )
                )
                cat_counts.fn += 1
                by_size[size].fn += 1

    totals = ErrorCounts()
    for counts in by_category.values():
        totals.add(counts)
    curve = pr_curve_from_outcomes(
        np.asarray(scores, dtype=float), np.asarray(flags, dtype=bool), totals.tp + totals.fn
    )
    return ErrorAnalysis(
        iou_threshold=threshold,
        images=list(per_image.values()),
        totals=totals,
        by_size=by_size,
        by_category=by_category,
        pr_curve=curve,
        best_f1=best_f1_point(curve),
    )
