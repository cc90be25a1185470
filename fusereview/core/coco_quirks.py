"""Quirks of real COCO exports, fixed in the parsed json: degenerate polygons, missing boxes, areas.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names). What an
untouched annotation looks like on export afterwards is ADR 0002.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np

from fusereview.core import geometry
from fusereview.core.coco_report import Report, as_float, floats


def clean_segmentations(anns: list[Any], rows: list[int], skip: set[int]) -> None:
    """Drop degenerate polygons (fewer than 3 points; pycocotools cannot rasterise them).

    Same rule as :func:`geometry.clean_polygons`, done on the parsed lists without converting every
    coordinate (this runs on every annotation of a Roboflow export). ``skip``: annotations whose
    coordinates are malformed, reported as problems and left alone.
    """
    for i in rows:
        if i in skip:
            continue
        seg = anns[i]["segmentation"]
        # A repeated closing point is harmless to pycocotools and is kept, so that an exported
        # annotation the reviewer never touched is byte-for-byte the input's.
        if any(len(p) < 6 for p in seg):
            anns[i]["segmentation"] = [p for p in seg if len(p) >= 6]


def all_numbers(seg: list[list[Any]]) -> bool:
    return all(type(p) is list for p in seg) and all(
        type(v) is int or type(v) is float for p in seg for v in p
    )


def fix_missing_boxes(anns: list[Any], rep: Report, no_box: list[int], boxes: np.ndarray) -> None:
    fixed = 0
    for i in no_box:
        seg = anns[i].get("segmentation")
        box = None
        if type(seg) is list and seg and all_numbers(seg):
            flat = floats(functools.partial(itertools.chain.from_iterable, seg))
            pts = flat.reshape(-1, 2) if len(flat) % 2 == 0 else flat[:0].reshape(0, 2)  # odd: reported
            if len(pts) and np.isfinite(pts).all():
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                box = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
        elif type(seg) is dict:
            try:
                box = list(geometry.rle_bbox(seg))
            except (geometry.SegmentationError, KeyError, TypeError, ValueError):
                box = None
        if box is None:
            rep.problem(f"annotations[{i}].bbox", "missing, and there is no mask to compute it from")
            continue
        anns[i]["bbox"] = box
        boxes[i] = box
        fixed += 1
    if fixed:
        rep.quirk("annotations", f"annotations without 'bbox': {fixed} (computed from the mask)")


def fix_areas(
    anns: list[Any],
    rep: Report,
    boxes: np.ndarray,
    poly_area: np.ndarray,
    rle_area: np.ndarray,
    area_missing: list[int],
) -> None:
    """Replace ``area`` by the mask area where it is missing or merely the bbox area.

    COCO evaluation buckets objects by ``area`` (small/medium/large): a bbox area in its place
    moves objects to the wrong bucket. The mask area used is the exact polygon area (computed
    vectorised), or the RLE pixel count.
    """
    n = len(anns)
    mask_area = np.where(np.isnan(rle_area), poly_area, rle_area)
    has_mask = (poly_area > 0) | ~np.isnan(rle_area)
    box_area = boxes[:, 2] * boxes[:, 3]
    given = np.array(
        [
            as_float(v) if (type(v) is int or type(v) is float) else np.nan
            for v in (a.get("area") if type(a) is dict else None for a in anns)
        ],
        dtype=np.float64,
    ).reshape(n)
    with np.errstate(invalid="ignore"):
        is_box_area = (
            has_mask
            & np.isfinite(box_area)
            & (np.abs(given - box_area) <= 0.5)
            & (np.abs(mask_area - given) > np.maximum(1.0, 0.02 * given))
        )
    fix_rows = np.flatnonzero(is_box_area)
    for i, v in zip(fix_rows.tolist(), np.round(mask_area[fix_rows], 2).tolist(), strict=True):
        anns[i]["area"] = v
    if is_box_area.any():
        first = int(np.flatnonzero(is_box_area)[0])
        rep.quirk(
            f"annotations[{first}].area",
            f"'area' is the bbox area, not the mask area: {int(is_box_area.sum())} annotations "
            "(replaced by the mask area)",
        )
    filled = 0
    for i in area_missing:
        if has_mask[i]:
            anns[i]["area"] = round(float(mask_area[i]), 2)
        elif np.isfinite(box_area[i]):
            anns[i]["area"] = float(box_area[i])
        else:
            continue
        filled += 1
    if filled:
        rep.quirk("annotations", f"annotations without 'area': {filled} (computed from the mask or box)")
