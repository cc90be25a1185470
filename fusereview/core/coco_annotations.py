"""Checks of one COCO json's annotations: ids, references, boxes, polygons, RLE, iscrowd, area.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names). Speed matters
(10,000 images with 100,000 polygons): one plain Python pass, then numpy on all numbers at once.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fusereview.core import geometry
from fusereview.core.coco_quirks import clean_segmentations, fix_areas, fix_missing_boxes
from fusereview.core.coco_report import ID_LIMIT, MISSING, Report, as_float, floats, number_rows_ok
from fusereview.core.coco_values import check_field
from fusereview.core.errors import short_repr

# How far (pixels, or this fraction of the image side if larger) a box may poke past the image edge
# and still be read as rounding (Roboflow writes integer x/y/w/h) and clipped, instead of an error.
_EDGE_TOLERANCE_PX = 2.0
_EDGE_TOLERANCE_FRACTION = 0.01

# Coordinates beyond this are not pixels of any image we accept (50 megapixels at most).
_MAX_COORD = 1e7
_RLE_KEYS = frozenset(("size", "counts"))
# An area beyond this is no image's (and an int that large would not fit SQLite's INTEGER).
_MAX_AREA = _MAX_COORD**2


def check_annotations(
    data: dict[str, Any], rep: Report, sizes: dict[int, tuple[int, int]], cat_ids: set[int]
) -> None:
    anns = data.get("annotations", MISSING)
    if anns is MISSING:
        rep.quirk("annotations", "no 'annotations' list: read as an unlabelled split")
        data["annotations"] = []
        return
    if not isinstance(anns, list):
        rep.problem("annotations", f"must be a list, got {type(anns).__name__}")
        return
    check_refs = "images" in data and isinstance(data["images"], list)
    check_cats = isinstance(data.get("categories"), list)

    seen: set[int] = set()
    box_rows: list[int] = []  # annotation index of each collected bbox
    box_vals: list[Any] = []
    no_box: list[int] = []
    poly_ann: list[int] = []  # annotation index of each collected polygon
    polys: list[list[Any]] = []
    rle_rows: list[int] = []
    degenerate: list[int] = []
    closing: list[int] = []
    bad_segs: set[int] = set()  # malformed polygon lists (reported), never cleaned
    bbox_only = 0
    no_mask: list[int] = []  # annotations with no usable mask (box only): their area must be the box's
    crowd_missing = 0
    area_missing: list[int] = []
    img_size: list[tuple[int, int] | None] = [None] * len(anns)

    for i, a in enumerate(anns):
        if type(a) is not dict:
            rep.problem(f"annotations[{i}]", f"must be an object, got {type(a).__name__}")
            continue
        aid = a.get("id")
        if type(aid) is not int or not -ID_LIMIT <= aid < ID_LIMIT:
            rep.problem(f"annotations[{i}].id", f"must be an integer, got {short_repr(aid)}")
        elif aid in seen:
            rep.problem(f"annotations[{i}].id", f"duplicate annotation id {aid}")
        else:
            seen.add(aid)
        iid = a.get("image_id")
        size = sizes.get(iid) if type(iid) is int else None
        if size is None and check_refs:
            rep.problem(f"annotations[{i}].image_id", f"no image with id {short_repr(iid)}")
        img_size[i] = size
        cid = a.get("category_id")
        if check_cats and (type(cid) is not int or cid not in cat_ids):
            rep.problem(f"annotations[{i}].category_id", f"no category with id {short_repr(cid)}")
        b = a.get("bbox", MISSING)
        if type(b) is list and len(b) == 4:
            box_rows.append(i)
            box_vals.append(b)
        elif b is MISSING or b is None:
            no_box.append(i)
        else:
            rep.problem(f"annotations[{i}].bbox", f"must be [x, y, width, height], got {short_repr(b)}")
        seg = a.get("segmentation", MISSING)
        t = type(seg)
        if t is list:
            n_good = 0
            malformed = False
            for j, poly in enumerate(seg):
                if type(poly) is not list:
                    rep.problem(
                        f"annotations[{i}].segmentation[{j}]",
                        f"a polygon must be a list of coordinates, got {type(poly).__name__}",
                    )
                    malformed = True
                    continue
                npoly = len(poly)
                if npoly % 2:
                    rep.problem(
                        f"annotations[{i}].segmentation[{j}]",
                        f"polygon has an odd number of coordinates ({npoly}); expected x, y pairs",
                    )
                    malformed = True
                elif npoly < 6:
                    degenerate.append(i)
                else:
                    n_good += 1
                    poly_ann.append(i)
                    polys.append(poly)
                    if npoly >= 8 and poly[0] == poly[-2] and poly[1] == poly[-1]:
                        closing.append(i)
            if malformed:
                bad_segs.add(i)
            elif n_good == 0:
                bbox_only += 1
                no_mask.append(i)
        elif t is dict:
            rle_rows.append(i)
        elif seg is MISSING or seg is None:
            bbox_only += 1
            no_mask.append(i)
        else:
            rep.problem(
                f"annotations[{i}].segmentation",
                f"must be a list of polygons or an RLE object, got {t.__name__}",
            )
        crowd = a.get("iscrowd", MISSING)
        if crowd is MISSING:
            crowd_missing += 1
            a["iscrowd"] = 0
        elif crowd not in (0, 1) or type(crowd) is bool:
            rep.problem(f"annotations[{i}].iscrowd", f"must be 0 or 1, got {short_repr(crowd)}")
        area = a.get("area", MISSING)
        if area is MISSING or area is None:
            area_missing.append(i)
        elif (
            type(area) not in (int, float)
            or not math.isfinite(as_float(area))
            or area < 0
            or area > _MAX_AREA
        ):
            rep.problem(
                f"annotations[{i}].area",
                f"must be a non-negative number of sensible size, got {short_repr(area)}",
            )
        elif area == 0:
            rep.problem(f"annotations[{i}].area", "is 0: a label with no area is never valid")

    n = len(anns)
    # ---- boxes, all at once -----------------------------------------------------------------
    boxes = np.full((n, 4), np.nan)
    if box_rows:
        rows = np.asarray(box_rows)
        if set(map(type, itertools.chain.from_iterable(box_vals))) <= {int, float}:
            ok = np.ones(len(box_vals), dtype=bool)  # the common case, checked in one C-level pass
        else:
            ok = number_rows_ok(box_vals)
        for r in rows[~ok]:
            rep.problem(f"annotations[{r}].bbox", f"must be 4 numbers, got {short_repr(anns[r]['bbox'])}")
        good_vals = [v for v, good in zip(box_vals, ok, strict=True) if good]
        arr = floats(lambda: itertools.chain.from_iterable(good_vals), 4 * len(good_vals)).reshape(-1, 4)
        rows = rows[ok]
        finite = np.isfinite(arr).all(axis=1)
        for r in rows[~finite]:
            rep.problem(
                f"annotations[{r}].bbox",
                f"has a value that is not a finite number: {short_repr(anns[r]['bbox'])}",
            )
        rows, arr = rows[finite], arr[finite]
        neg = (arr[:, 2] < 0) | (arr[:, 3] < 0)
        for r in rows[neg]:
            rep.problem(
                f"annotations[{r}].bbox",
                f"width and height must not be negative: {short_repr(anns[r]['bbox'])}",
            )
        rows, arr = rows[~neg], arr[~neg]
        empty = (arr[:, 2] == 0) | (arr[:, 3] == 0)
        for r in rows[empty]:
            rep.problem(
                f"annotations[{r}].bbox",
                f"has zero width or height: {short_repr(anns[r]['bbox'])} (a label with no area is never valid)",
            )
        rows, arr = rows[~empty], arr[~empty]
        boxes[rows] = arr
        check_box_edges(anns, rep, rows, arr, img_size)
    # ---- polygons, all at once --------------------------------------------------------------
    poly_area = np.zeros(n)
    bad_coords: set[int] = set()
    if polys:
        poly_area, bad_coords = polygon_areas(rep, poly_ann, polys, n)
    if degenerate or closing:
        clean_segmentations(anns, sorted(set(degenerate) | set(closing)), bad_coords | bad_segs)
    if closing:
        rep.quirk(
            "annotations", f"polygons repeating their first point at the end: {len(closing)} (kept; harmless)"
        )
    if degenerate:
        rep.quirk(
            f"annotations[{degenerate[0]}].segmentation",
            f"polygons of fewer than 3 points: {len(degenerate)} (dropped)",
        )
    # ---- RLE (rare: crowd annotations): checked one by one ------------------------------------
    rle_area = np.full(n, np.nan)
    n_uncompressed = 0
    for i in rle_rows:
        seg = anns[i]["segmentation"]
        size = img_size[i]
        try:
            rle = geometry.check_rle(seg, *(size[::-1] if size else (None, None)))
        except geometry.SegmentationError as exc:
            rep.problem(f"annotations[{i}].segmentation", str(exc))
            continue
        except (OverflowError, ValueError, MemoryError):  # sizes of 400 digits (only with no image known)
            rep.problem(f"annotations[{i}].segmentation", "RLE size or counts out of any image's range")
            continue
        for key in (
            seg.keys() - _RLE_KEYS
        ):  # kept with the mask and written back: same rules as any kept field
            check_field(key, seg[key], f"annotations[{i}].segmentation.{key}", rep)
        if isinstance(seg.get("counts"), list):
            n_uncompressed += 1
            anns[i]["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
        elif isinstance(seg.get("counts"), bytes):
            seg["counts"] = seg["counts"].decode("ascii")
        rle_area[i] = float(mask_utils.area(rle))
        if rle_area[i] == 0:
            rep.problem(
                f"annotations[{i}].segmentation",
                "mask is empty (0 pixels): a label with no area is never valid",
            )
    if n_uncompressed:
        rep.quirk("annotations", f"uncompressed RLE masks: {n_uncompressed} (stored compressed)")
    if bbox_only:
        rep.quirk("annotations", f"annotations without a mask (bbox only): {bbox_only}")
    if crowd_missing:
        rep.quirk("annotations", f"annotations without 'iscrowd': {crowd_missing} (set to 0)")
    _check_empty_masks(anns, rep, poly_ann, poly_area, bad_coords | bad_segs)
    _check_box_only_areas(anns, rep, no_mask, boxes)
    fix_missing_boxes(anns, rep, no_box, boxes)
    fix_areas(anns, rep, boxes, poly_area, rle_area, area_missing)
    if seen and min(seen) == 0:
        rep.quirk("annotations", "annotation ids start at 0 (kept; remapped wherever pycocotools evaluates)")


def _check_empty_masks(
    anns: list[Any], rep: Report, poly_ann: list[int], poly_area: np.ndarray, skip: set[int]
) -> None:
    """Polygons that enclose nothing (every point on one line): the label has no area."""
    for i in sorted(set(poly_ann) - skip):
        if poly_area[i] == 0:
            rep.problem(
                f"annotations[{i}].segmentation",
                "polygons enclose no area (mask is empty): a label with no area is never valid",
            )


def _check_box_only_areas(anns: list[Any], rep: Report, no_mask: list[int], boxes: np.ndarray) -> None:
    """A label without a mask is its box: an ``area`` other than width x height claims a mask it lacks (a quirk).

    (Evaluation buckets objects by ``area``; a box-only label whose area says 7 pixels while its box
    holds 400 is silently put in the wrong bucket, or is what is left of an empty mask.)
    """
    for i in no_mask:
        area = anns[i].get("area")
        if type(area) not in (int, float) or not 0 < area <= _MAX_AREA or not np.isfinite(boxes[i]).all():
            continue  # missing (computed from the box) or already reported
        box_area = float(boxes[i, 2] * boxes[i, 3])
        if abs(area - box_area) > max(1.0, 0.02 * box_area):
            # a quirk, not a refusal: a file whose masks were stripped (boxes kept, areas of the
            # masks left) is still a usable box dataset; `info` and `validate` say so
            rep.quirk(
                f"annotations[{i}].area",
                f"area {short_repr(area)} claims a mask, but the segmentation is empty (a box-only label "
                f"has area = width x height = {box_area:g})",
            )


def check_box_edges(
    anns: list[Any], rep: Report, rows: np.ndarray, arr: np.ndarray, img_size: list[tuple[int, int] | None]
) -> None:
    """Report boxes that poke a little past the image edge (rounding); flag those far outside."""
    known = np.array([img_size[r] is not None for r in rows], dtype=bool)
    if not known.any():
        return
    rows, arr = rows[known], arr[known]
    wh = np.array([img_size[r] for r in rows], dtype=np.float64)
    tol = np.maximum(_EDGE_TOLERANCE_PX, _EDGE_TOLERANCE_FRACTION * wh)
    x0, y0 = arr[:, 0], arr[:, 1]
    x1, y1 = x0 + arr[:, 2], y0 + arr[:, 3]
    far = (x0 < -tol[:, 0]) | (y0 < -tol[:, 1]) | (x1 > wh[:, 0] + tol[:, 0]) | (y1 > wh[:, 1] + tol[:, 1])
    for r, (w, h) in zip(rows[far], wh[far], strict=True):
        rep.problem(
            f"annotations[{r}].bbox",
            f"box {short_repr(anns[r]['bbox'])} goes outside the {int(w)}x{int(h)} image by more than rounding "
            "(is the image's width/height right?)",
        )
    past = ~far & ((x0 < 0) | (y0 < 0) | (x1 > wh[:, 0]) | (y1 > wh[:, 1]))
    if past.any():
        # Kept as given (an untouched annotation exports unchanged); whoever draws or trains on a
        # box clips it to the image there.
        rep.quirk(
            f"annotations[{rows[np.flatnonzero(past)[0]]}].bbox",
            f"boxes a little past the image edge: {int(past.sum())} (rounding; kept as given)",
        )


def polygon_areas(
    rep: Report, poly_ann: list[int], polys: list[list[Any]], n: int
) -> tuple[np.ndarray, set[int]]:
    """Shoelace area per annotation (sum over its polygons), vectorised over every polygon at once.

    Also checks that every coordinate is a finite number; returns the areas and the indices of
    annotations with bad coordinates (reported here).
    """
    bad: set[int] = set()
    lengths = np.fromiter((len(p) for p in polys), dtype=np.int64, count=len(polys))
    owner = np.asarray(poly_ann, dtype=np.int64)
    # One C-level pass for the types, one for the values: 3x faster than np.array(list) on 100k
    # polygons. The type check matters: np.fromiter would quietly parse "1.5" or True as numbers.
    if not set(map(type, itertools.chain.from_iterable(polys))) <= {int, float}:
        # Rare: some coordinate is a string / null / bool / list. Find the culprits one by one.
        ok = number_rows_ok(polys)
        for k in np.flatnonzero(~ok):
            rep.problem(f"annotations[{owner[k]}].segmentation", "polygon coordinates must be numbers")
            bad.add(int(owner[k]))
        polys = [p for p, good in zip(polys, ok, strict=True) if good]
        lengths, owner = lengths[ok], owner[ok]
        if not polys:
            return np.zeros(n), bad
    flat = floats(lambda: itertools.chain.from_iterable(polys), int(lengths.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # Finite and of a size an image can have (1e30 would overflow the area to inf).
    finite_per_poly = np.logical_and.reduceat(np.isfinite(flat) & (np.abs(flat) < _MAX_COORD), starts)
    if not finite_per_poly.all():
        for k in np.flatnonzero(~finite_per_poly):
            rep.problem(
                f"annotations[{owner[k]}].segmentation",
                "polygon has a coordinate that is not a finite number of sensible size",
            )
            bad.add(int(owner[k]))
        flat = np.where(
            np.isfinite(flat) & (np.abs(flat) < _MAX_COORD), flat, 0.0
        )  # reported; keep the maths quiet
    x, y = flat[0::2], flat[1::2]
    pstarts = starts // 2
    npts = lengths // 2
    nxt = np.arange(len(x)) + 1
    nxt[pstarts + npts - 1] = pstarts  # close each ring
    cross = x * y[nxt] - x[nxt] * y
    area = np.abs(np.add.reduceat(cross, pstarts)) * 0.5
    return np.bincount(owner, weights=area, minlength=n), bad
