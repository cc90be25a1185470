"""Which pending prediction is an object that is already labelled.

On a labelled dataset most predictions repeat a label (177 of 195 on the demo). Each image's
pending predictions are matched to its annotations, category by category, the way the COCO
evaluator matches detections to ground truth at IoU 0.5, so that "matches" means exactly what
AP50 counts as a true positive:

- IoU is the mask IoU when both the prediction and the annotation have a mask, else the box IoU
  (a box-only label, or a box-only prediction, is compared by boxes);
- **greedy by score**: predictions are taken highest score first, each takes the unmatched
  annotation it overlaps most with IoU >= :data:`MATCH_IOU` (kind ``"match"``);
- a prediction left over whose best overlap (>= :data:`MATCH_IOU`) is an annotation another
  prediction already took is a **duplicate** of it (kind ``"duplicate"``): accepting it must not
  add a second label of the same object either;
- everything else is unmatched (kind ``""``): the predictions a reviewer must decide.

Greedy rather than Hungarian: it is what COCOeval does, it is deterministic and needs no solver,
and with a threshold of 0.5 two annotations rarely compete for one prediction (two boxes that
both overlap a third at IoU >= 0.5 overlap each other heavily).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusereview.core.records import RLE

#: The overlap at which a prediction is the same object as an annotation (COCO's AP50 threshold).
MATCH_IOU = 0.5


@dataclass(frozen=True)
class Candidate:
    """A prediction or an annotation as the matcher sees it."""

    id: int
    category_id: int
    box: tuple[float, float, float, float]  # xyxy
    mask: RLE | None
    score: float = 0.0


@dataclass(frozen=True)
class Match:
    """The annotation one prediction matches (``kind`` ``"match"`` or ``"duplicate"``)."""

    annotation_id: int
    iou: float
    kind: str


def iou_matrix(preds: Sequence[Candidate], anns: Sequence[Candidate]) -> np.ndarray:
    """``(P, A)`` IoU: masks where both have one, boxes otherwise."""
    from pycocotools import mask as mask_utils

    from fusereview.core.geometry import _to_coco_rle, box_iou

    out = box_iou(
        np.array([p.box for p in preds]).reshape(-1, 4), np.array([a.box for a in anns]).reshape(-1, 4)
    )
    pm = [i for i, p in enumerate(preds) if p.mask is not None]
    am = [j for j, a in enumerate(anns) if a.mask is not None]
    if pm and am:
        prles = [_to_coco_rle(preds[i].mask) for i in pm]  # type: ignore[arg-type]
        arles = [_to_coco_rle(anns[j].mask) for j in am]  # type: ignore[arg-type]
        ious = np.asarray(mask_utils.iou(prles, arles, [0] * len(arles)), dtype=np.float64)
        out[np.ix_(pm, am)] = ious.reshape(len(pm), len(am))
    return out


def match_image(preds: Sequence[Candidate], anns: Sequence[Candidate]) -> dict[int, Match]:
    """Match one image's predictions to its annotations (see the module docstring).

    Returns
    -------
    dict
        Prediction id -> :class:`Match`, for the matched and duplicate predictions only.
    """
    result: dict[int, Match] = {}
    for cat in sorted({p.category_id for p in preds}):
        ps = sorted((p for p in preds if p.category_id == cat), key=lambda p: (-p.score, p.id))
        as_ = [a for a in anns if a.category_id == cat]
        if not ps or not as_:
            continue
        ious = iou_matrix(ps, as_)
        taken: set[int] = set()
        leftover: list[int] = []
        for i, p in enumerate(ps):
            best_j, best = -1, MATCH_IOU
            for j in range(len(as_)):
                if j not in taken and ious[i, j] >= best:
                    best_j, best = j, float(ious[i, j])
            if best_j >= 0:
                taken.add(best_j)
                result[p.id] = Match(as_[best_j].id, best, "match")
            else:
                leftover.append(i)
        for i in leftover:
            j = int(np.argmax(ious[i]))
            if ious[i, j] >= MATCH_IOU:
                result[ps[i].id] = Match(as_[j].id, float(ious[i, j]), "duplicate")
    return result


def annotation_candidate(
    ann_id: int, category_id: int, bbox: Sequence[float], segmentation: Any, height: int, width: int
) -> Candidate:
    """An annotation (COCO bbox xywh + segmentation) as a :class:`Candidate`."""
    from fusereview.core.geometry import SegmentationError, segmentation_to_rle

    x, y, w, h = (float(v) for v in bbox)
    try:
        mask = segmentation_to_rle(segmentation, height, width)
    except SegmentationError:
        mask = None  # a malformed imported mask is compared by its box (validate reports it)
    return Candidate(ann_id, category_id, (x, y, x + w, y + h), mask)
