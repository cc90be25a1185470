"""Boxes, polygons, masks and COCO RLE, and the conversions between them.

Conventions
-----------
- A box is ``xywh`` (COCO: top-left corner, width, height) or ``xyxy`` (two corners), in image pixels.
- A mask is a ``bool`` array of shape ``(height, width)``.
- An RLE is a COCO run-length dict ``{"size": [height, width], "counts": str}``; ``counts`` is the
  compressed string form decoded to ``str`` so that it is JSON-serialisable. Functions that *read* an
  RLE also accept ``counts`` as ``bytes`` (pycocotools' own output) or as a list of ints (the
  "uncompressed" form COCO uses for crowd annotations).
- Polygons are COCO polygons: a list of flat ``[x0, y0, x1, y1, ...]`` lists; several polygons make
  one object with several parts. Polygons cannot represent holes, so a mask with holes must stay an RLE.

Everything here is pure numpy / pycocotools / OpenCV (imported only where needed): no torch, no Qt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fusereview.core.errors import FusereviewError
from fusereview.core.records import RLE

Box = tuple[float, float, float, float]

__all__ = [
    "Box",
    "SegmentationError",
    "box_iou",
    "check_rle",
    "clean_polygons",
    "empty_rle",
    "mask_has_holes",
    "mask_to_polygons",
    "mask_to_rle",
    "polygons_area",
    "polygons_to_rle",
    "rle_area",
    "rle_bbox",
    "rle_counts_from_string",
    "rle_to_mask",
    "segmentation_to_rle",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]


class SegmentationError(FusereviewError, ValueError):
    """A segmentation cannot be turned into a mask (wrong size, malformed RLE, odd-length polygon)."""


# --------------------------------------------------------------------------------------------- boxes


def xywh_to_xyxy(b: Sequence[float]) -> Box:
    """Convert a COCO ``(x, y, w, h)`` box to ``(x0, y0, x1, y1)``."""
    x, y, w, h = (float(v) for v in b)
    return (x, y, x + w, y + h)


def xyxy_to_xywh(b: Sequence[float]) -> Box:
    """Convert an ``(x0, y0, x1, y1)`` box to COCO ``(x, y, w, h)``."""
    x0, y0, x1, y1 = (float(v) for v in b)
    return (x0, y0, x1 - x0, y1 - y0)


def _areas_and_intersection(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box areas of ``a`` (N) and ``b`` (M), and every pair's intersection area (N, M); boxes ``xyxy``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return area_a, area_b, wh[..., 0] * wh[..., 1]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Parameters
    ----------
    a, b:
        Arrays of shape ``(N, 4)`` and ``(M, 4)``, boxes as ``xyxy``.

    Returns
    -------
    numpy.ndarray
        ``(N, M)`` float64; 0 where the union is empty (two zero-size boxes).
    """
    area_a, area_b, inter = _areas_and_intersection(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def box_containment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How much of the smaller box of each pair lies inside the other: intersection / smaller area.

    1 when one box is inside the other, whatever their IoU (a tight box inside a loose one).
    Takes and returns what :func:`box_iou` does; 0 where the smaller box has no area.
    """
    area_a, area_b, inter = _areas_and_intersection(a, b)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    out = np.zeros_like(inter)
    np.divide(inter, smaller, out=out, where=smaller > 0)
    return out


def clean_polygons(polys: Sequence[Sequence[float]]) -> list[list[float]]:
    """Drop a repeated closing point and every polygon of fewer than 3 points.

    Real exports (Roboflow among them) repeat the first point at the end, and sometimes hold
    degenerate 1- or 2-point "polygons". pycocotools would read a 4-number polygon as a *box*,
    so they must go before rasterising.

    Parameters
    ----------
    polys:
        COCO polygons (flat coordinate lists of even length).

    Returns
    -------
    list of list of float
        The usable polygons, each with at least 3 distinct-ended points.
    """
    out: list[list[float]] = []
    for poly in polys:
        p = [float(v) for v in poly]
        if len(p) >= 8 and p[0] == p[-2] and p[1] == p[-1]:
            p = p[:-2]
        if len(p) >= 6:
            out.append(p)
    return out


def polygons_area(polys: Sequence[Sequence[float]]) -> float:
    """Exact area of polygons (shoelace formula), summed over the parts.

    This is the geometric area; the rasterised mask area (:func:`rle_area`) differs from it by
    about half the perimeter in pixels. Used where rasterising would be too slow.
    """
    total = 0.0
    for poly in polys:
        xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(xy) < 3:
            continue
        x, y = xy[:, 0], xy[:, 1]
        total += 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))
    return total


def empty_rle(height: int, width: int) -> RLE:
    """An RLE of an all-background mask."""
    return mask_to_rle(np.zeros((height, width), dtype=bool))


def polygons_to_rle(polys: Sequence[Sequence[float]], height: int, width: int) -> RLE:
    """Rasterise polygons into one RLE (parts merged by union).

    Parameters
    ----------
    polys:
        COCO polygons; cleaned with :func:`clean_polygons` first.
    height, width:
        The image size.

    Returns
    -------
    RLE
        Compressed RLE with ``counts`` as ``str``; an empty mask when no polygon is usable.

    Raises
    ------
    SegmentationError
        When a polygon has an odd number of coordinates.
    """
    for i, poly in enumerate(polys):
        if len(poly) % 2:
            raise SegmentationError(f"polygon {i} has an odd number of coordinates ({len(poly)})")
    cleaned = clean_polygons(polys)
    if not cleaned:
        return empty_rle(height, width)
    rles = mask_utils.frPyObjects(cleaned, int(height), int(width))
    return _to_str_counts(mask_utils.merge(rles))


def rle_counts_from_string(s: str) -> list[int]:
    """Decode the compressed counts string of a COCO RLE (the inverse of pycocotools' ``rleToString``).

    pycocotools decodes without checking that the runs add up to ``height * width`` (a bad file can
    make it read or write out of bounds), so files from outside are checked with this first.

    Raises
    ------
    SegmentationError
        When the string is truncated or holds characters outside the encoding's alphabet.
    """
    counts: list[int] = []
    p = 0
    n = len(s)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise SegmentationError("compressed RLE counts string is truncated")
            c = ord(s[p]) - 48
            if c < 0 or c > 63:
                raise SegmentationError(f"compressed RLE counts string has an invalid character {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def check_rle(rle: Any, height: int | None, width: int | None) -> dict[str, Any]:
    """Check an RLE dict from a file; return it compressed, as pycocotools wants it (``counts`` bytes).

    Parameters
    ----------
    rle:
        ``{"size": [h, w], "counts": str | bytes | list[int]}``.
    height, width:
        The image size the RLE must have, or ``None`` to accept any size.

    Raises
    ------
    SegmentationError
        Malformed dict, wrong size, negative runs, or runs that do not add up to ``h * w``.
    """
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise SegmentationError("RLE must be an object with 'size' and 'counts'")
    size = rle["size"]
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise SegmentationError(f"RLE size must be [height, width] of positive integers, got {size!r}")
    h, w = int(size[0]), int(size[1])
    if height is not None and width is not None and (h, w) != (int(height), int(width)):
        raise SegmentationError(f"RLE size is {h}x{w} (HxW) but the image is {height}x{width}")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", errors="replace")
    if isinstance(counts, str):
        runs = rle_counts_from_string(counts)
    elif isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise SegmentationError("uncompressed RLE counts must be integers")
        runs = counts
    else:
        raise SegmentationError(
            f"RLE counts must be a string or a list of integers, got {type(counts).__name__}"
        )
    if any(v < 0 for v in runs):
        raise SegmentationError("RLE counts must not be negative")
    total = sum(runs)
    if total != h * w:
        raise SegmentationError(f"RLE runs cover {total} pixels but its size {h}x{w} has {h * w}")
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": counts.encode("ascii")}


def segmentation_to_rle(seg: Any, height: int, width: int) -> RLE | None:
    """Turn any COCO segmentation into one compressed RLE.

    Parameters
    ----------
    seg:
        A list of polygons, an uncompressed RLE (``counts`` list), or a compressed RLE
        (``counts`` str or bytes).
    height, width:
        The image size; an RLE of another size is refused.

    Returns
    -------
    RLE or None
        ``None`` for a bbox-only annotation (empty list, or only degenerate polygons).

    Raises
    ------
    SegmentationError
        When the segmentation is malformed (odd-length polygon, RLE of the wrong size or with
        runs that do not add up, unknown type).
    """
    if seg is None:
        return None
    if isinstance(seg, list):
        if not seg:
            return None
        if not all(isinstance(p, (list, tuple)) for p in seg):
            raise SegmentationError("polygon segmentation must be a list of coordinate lists")
        if not all(type(v) in (int, float) and math.isfinite(v) for p in seg for v in p):
            raise SegmentationError("polygon coordinates must be finite numbers")
        if not clean_polygons(seg):
            for i, poly in enumerate(seg):
                if len(poly) % 2:
                    raise SegmentationError(f"polygon {i} has an odd number of coordinates ({len(poly)})")
            return None
        return polygons_to_rle(seg, height, width)
    if isinstance(seg, dict):
        return _to_str_counts(check_rle(seg, height, width))
    raise SegmentationError(
        f"segmentation must be a list of polygons or an RLE object, got {type(seg).__name__}"
    )


# ------------------------------------------------------------------------------------------ RLE, masks


def _to_str_counts(rle: dict[str, Any]) -> RLE:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def _to_coco_rle(rle: RLE) -> dict[str, Any]:
    """An RLE as pycocotools wants it (compressed, ``counts`` bytes), checked if it came as a list."""
    counts = rle["counts"]
    if isinstance(counts, list):
        return check_rle(rle, None, None)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def mask_to_rle(mask: np.ndarray) -> RLE:
    """Encode a ``(height, width)`` bool/uint8 mask as compressed RLE with ``counts`` as ``str``."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {m.shape}")
    return _to_str_counts(mask_utils.encode(np.asfortranarray(m.astype(np.uint8, copy=False))))


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode an RLE (compressed or uncompressed) to a ``bool`` array of shape ``(height, width)``."""
    return mask_utils.decode(_to_coco_rle(rle)).astype(bool)


def rle_area(rle: RLE) -> float:
    """Number of foreground pixels of an RLE (the COCO ``area`` of a mask)."""
    return float(mask_utils.area(_to_coco_rle(rle)))


def rle_bbox(rle: RLE) -> Box:
    """Tight ``xywh`` box of an RLE's foreground; ``(0, 0, 0, 0)`` for an empty mask."""
    x, y, w, h = (float(v) for v in mask_utils.toBbox(_to_coco_rle(rle)))
    return (x, y, w, h)


def mask_to_polygons(mask: np.ndarray, *, min_points: int = 3) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons (one per connected part).

    The contour is traced on a mask upsampled 2x so that the polygon runs along pixel *edges*,
    not pixel centres: rasterised again by pycocotools it gives back the same pixels (a trace
    through the centres loses a pixel row around every object, which matters for small objects).
    Holes are not represented (a polygon cannot hold one): check :func:`mask_has_holes` first.

    Parameters
    ----------
    mask:
        ``(height, width)`` bool or uint8.
    min_points:
        Parts traced with fewer points are dropped.

    Returns
    -------
    list of list of float
        Flat ``[x0, y0, x1, y1, ...]`` polygons; empty for an empty mask.
    """
    import cv2  # here: reading COCO files (coco.py) needs no OpenCV, and importing it is slow

    m = np.asarray(mask).astype(bool)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return []
    # Work on the object's crop only: upsampling a whole 4k image for a small object is waste.
    x0, y0 = int(xs.min()), int(ys.min())
    crop = m[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1].astype(np.uint8)
    crop = np.pad(crop, 1)
    up = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys: list[list[float]] = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64) / 2.0
        if len(pts) < min_points:
            continue
        pts[:, 0] += x0 - 1
        pts[:, 1] += y0 - 1
        polys.append([round(float(v), 2) for v in pts.reshape(-1)])
    return polys


def mask_has_holes(mask: np.ndarray) -> bool:
    """Whether any part of the mask encloses background (then keep it as RLE, never as polygons)."""
    import cv2

    m = np.ascontiguousarray(np.asarray(mask).astype(np.uint8))
    if not m.any():
        return False
    # Pad so that background touching the image border is not mistaken for a hole.
    _, hierarchy = cv2.findContours(np.pad(m, 1), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return False
    return bool((hierarchy[0][:, 3] >= 0).any())
