"""The one geometry rule: how a detection becomes a reviewable instance, and what every label must satisfy.

A reviewed instance is what was drawn on screen. SAM3's box head and mask head are separate: the
box is usually right while the mask may bleed onto neighbouring objects (on the demo model, 123 of
195 masks reach more than twice their box's extent) or be empty. So a detection is turned into an
*instance* once, when it is stored (:func:`detection_instance`), and the stored instance is what
the canvas shows and what accepting saves:

1. The model's box is clipped to the image.
2. The mask keeps only its pixels inside the box grown by a margin of ``max(2 px, 5 %`` of the
   box's longer side). Measured on the demo model's 195 detections, the share of mask pixels
   kept goes 67.3 % (no margin) → 69.3 % (5 %) → 70.3 % (10 %) → 71.5 % (25 %): the first few
   pixels hold the object's own edge, beyond them it is neighbours.
3. Of what remains, connected parts (8-connected) smaller than 20 % of the largest part are
   fragments and are removed (measured: 180 of 195 masks are one part after step 2; the second
   part's size is a median 15 % of the first's). A part of at least 20 % is kept: an object split
   by an occluder keeps both halves.
4. The cleaned mask must agree with the model's box: IoU of its tight box with the model's box
   at least :data:`MIN_BOX_AGREEMENT` (0.8), and at least :data:`MIN_MASK_PIXELS` pixels.
   Otherwise the instance is **box only** (no mask; the note says why): a mask that disagrees
   with its own box is not a segmentation of that object, and the box head is usually the better
   of the two. Measured on the demo model's 288 detections (threshold 0.05) of the 35 demo
   images, COCO AP of the instances against the raw output (train / valid / test split):

   ===========  =====================  =====================
   agreement    bbox AP                segm AP (box only: its box)
   ===========  =====================  =====================
   raw output   0.356 / 0.314 / 0.410  0.034 / 0.043 / 0.078
   0.5          0.215 / 0.225 / 0.236  0.163 / 0.139 / 0.187
   0.7          0.317 / 0.293 / 0.354  0.170 / 0.129 / 0.212
   **0.8**      0.352 / 0.314 / 0.407  0.176 / 0.136 / 0.249
   0.9          0.356 / 0.314 / 0.410  0.177 / 0.147 / 0.259
   ===========  =====================  =====================

   At 0.5 the labels' boxes would be the masks' (tighter than the objects: bbox AP falls by
   a third); from 0.8 the boxes are the model's own and the masks are 3-5x better than raw. 0.8
   rather than 0.9 keeps the masks of a better model, whose few pixels of box error alone cost
   about 0.1 IoU on a 40-px object.
5. With a mask, the instance's box is the mask's tight box, so box and mask never disagree.

:func:`annotation_geometry` turns an instance (or an edited mask or box) into the COCO fields of
an annotation, and :func:`check_annotation` states the invariants of every annotation the project
creates or edits (export runs it too): area > 0; with a mask, bbox = the mask's tight box (±1 px)
and area = its pixel count; box only, ``segmentation: []`` and area = w·h.

Pure numpy / pycocotools / OpenCV: no torch, no Qt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.records import RLE

Box = tuple[float, float, float, float]

#: The box grows by this share of its longer side (at least MARGIN_MIN_PX) before the mask is cut.
MARGIN_FRACTION = 0.05
MARGIN_MIN_PX = 2.0
#: Mask parts smaller than this share of the largest part are fragments.
FRAGMENT_FRACTION = 0.2
#: A mask of fewer pixels is not a segmentation (the instance is box only).
MIN_MASK_PIXELS = 4
#: The cleaned mask's tight box must overlap the model's box at least this much (IoU).
MIN_BOX_AGREEMENT = 0.8
#: Tolerance of the bbox invariant (COCO boxes of a mask are whole pixels; polygons may round).
BBOX_TOLERANCE_PX = 1.0


class InstanceError(FusereviewError, ValueError):
    """A detection, edit or drawing would give an instance with no area (nothing is stored)."""


@dataclass(frozen=True)
class Instance:
    """What a detection becomes for review: the box and mask shown, stored and saved.

    Attributes
    ----------
    box:
        ``(x0, y0, x1, y1)`` in image pixels; the mask's tight box when there is a mask.
    mask:
        COCO RLE at the image size, or ``None``: the instance is box only.
    note:
        What the rule did, in words for the reviewer (shown in the details panel).
    model_box:
        The box the model gave (before clipping), kept for the record.
    removed_pixels:
        Mask pixels removed (outside the box, fragments, or the whole mask when dropped).
    """

    box: Box
    mask: RLE | None
    note: str
    model_box: Box
    removed_pixels: int = 0

    @property
    def box_only(self) -> bool:
        """No usable mask: the instance is its box."""
        return self.mask is None


def _finite_box(box: Sequence[float], what: str) -> Box:
    if len(box) != 4:
        raise InstanceError(f"{what} must have 4 numbers (x0, y0, x1, y1), got {len(box)}")
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise InstanceError(f"{what} must be numbers, got {tuple(box)!r}") from exc
    if not all(math.isfinite(v) for v in values):
        raise InstanceError(f"{what} is not finite: {values}")
    x0, y0, x1, y1 = values
    if x1 < x0 or y1 < y0:
        raise InstanceError(f"{what} must have x0 <= x1 and y0 <= y1, got {values}")
    return (x0, y0, x1, y1)


def clip_box(box: Sequence[float], width: int, height: int) -> Box:
    """A box clipped to the image ``[0, width] x [0, height]``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        min(max(x0, 0.0), width),
        min(max(y0, 0.0), height),
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
    )


def box_has_area(box: Sequence[float]) -> bool:
    """At least one pixel wide and high: what can be drawn, reviewed and evaluated."""
    x0, y0, x1, y1 = box
    return x1 - x0 >= 1.0 and y1 - y0 >= 1.0


def margin_px(box: Sequence[float]) -> float:
    """The margin around a box inside which its mask is kept (see the module docstring)."""
    x0, y0, x1, y1 = box
    return max(MARGIN_MIN_PX, MARGIN_FRACTION * max(x1 - x0, y1 - y0))


def _region(box: Sequence[float], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel region ``(c0, r0, c1, r1)`` (exclusive ends) covering a box plus margin."""
    x0, y0, x1, y1 = box
    c0 = max(math.floor(x0 - margin), 0)
    r0 = max(math.floor(y0 - margin), 0)
    c1 = min(math.ceil(x1 + margin), width)
    r1 = min(math.ceil(y1 + margin), height)
    return c0, r0, max(c1, c0), max(r1, r0)


def mask_tight_box(mask: np.ndarray) -> Box | None:
    """``(x0, y0, x1, y1)`` of a bool mask's pixels (pixel edges), or ``None`` when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def remove_fragments(mask: np.ndarray, fraction: float = FRAGMENT_FRACTION) -> np.ndarray:
    """Drop connected parts (8-connected) smaller than ``fraction`` of the largest part."""
    import cv2  # here: importing the core must not load OpenCV

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:  # background plus at most one part
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= fraction * areas.max()) + 1
    return np.isin(labels, keep)


def detection_instance(box: Sequence[float], mask: RLE | None, height: int, width: int) -> Instance:
    """Apply the geometry rule to one detection (see the module docstring).

    Parameters
    ----------
    box:
        The model's box ``(x0, y0, x1, y1)`` in image pixels.
    mask:
        Its mask (COCO RLE at the image size), or ``None``.
    height, width:
        The image size.

    Raises
    ------
    InstanceError
        The box is not finite, inverted, lies wholly outside the image, or has no area inside
        it, and there is no usable mask to take its place.
    """
    from fusereview.core.geometry import mask_to_rle, rle_to_mask

    model_box = _finite_box(box, "box")
    x0, y0, x1, y1 = model_box
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise InstanceError(f"box {model_box} lies outside the {width}x{height} image")
    clipped = clip_box(model_box, width, height)
    if mask is None:
        return _box_only(clipped, model_box, "box only: the model gave no mask", 0)
    full = rle_to_mask(mask)
    total = int(full.sum())
    if total == 0:
        return _box_only(clipped, model_box, "box only: the model's mask is empty", 0)
    c0, r0, c1, r1 = _region(clipped, margin_px(clipped), width, height)
    crop = full[r0:r1, c0:c1]
    cleaned = remove_fragments(crop)
    kept = int(cleaned.sum())
    tight = mask_tight_box(cleaned)
    if tight is None or kept < MIN_MASK_PIXELS:
        return _box_only(clipped, model_box, "box only: no mask pixels inside the box", total)
    tight = (tight[0] + c0, tight[1] + r0, tight[2] + c0, tight[3] + r0)
    agreement = _iou(tight, clipped) if box_has_area(clipped) else 0.0
    if agreement < MIN_BOX_AGREEMENT and box_has_area(clipped):
        return _box_only(
            clipped,
            model_box,
            f"box only: the mask disagrees with the box (IoU {agreement:.3f} < {MIN_BOX_AGREEMENT})",
            total,
        )
    out = np.zeros_like(full)
    out[r0:r1, c0:c1] = cleaned
    removed = total - kept
    note = "mask" if removed == 0 else f"mask cleaned: {removed} px outside the box or in fragments removed"
    return Instance(tight, mask_to_rle(out), note, model_box, removed)


def _box_only(box: Box, model_box: Box, note: str, removed: int) -> Instance:
    if not box_has_area(box):
        raise InstanceError(f"box {model_box} has no area inside the image and no usable mask")
    return Instance(box, None, note, model_box, removed)


# --- annotations ----------------------------------------------------------------------------------


def mask_segmentation(mask: RLE) -> Any:
    """The COCO segmentation that holds exactly a mask's pixels: polygons when they do, else the RLE.

    Polygons (what a Roboflow export holds) are used when the mask has no holes and the polygons
    rasterise back to the very same pixels (checked, not assumed); otherwise the RLE itself.
    """
    from fusereview.core import geometry

    binary = geometry.rle_to_mask(mask)
    rle = {"size": [int(mask["size"][0]), int(mask["size"][1])], "counts": mask["counts"]}
    if not binary.any() or geometry.mask_has_holes(binary):
        return rle
    polygons = geometry.clean_polygons(geometry.mask_to_polygons(binary))
    if not polygons:
        return rle
    back = geometry.rle_to_mask(geometry.polygons_to_rle(polygons, binary.shape[0], binary.shape[1]))
    return polygons if np.array_equal(back, binary) else rle


def annotation_geometry(mask: RLE | None, box: Sequence[float] | None = None) -> tuple[Box, Any, float]:
    """``(bbox xywh, segmentation, area)`` of an annotation made from a mask or, without one, a box.

    With a mask: bbox = its tight box, area = its pixel count, segmentation = exactly its pixels
    (:func:`mask_segmentation`); ``box`` is ignored. Box only: ``segmentation: []``, area = w·h.

    Raises
    ------
    InstanceError
        An empty mask, or a box with no area.
    """
    from fusereview.core import geometry

    if mask is not None:
        area = float(geometry.rle_area(mask))
        if area <= 0:
            raise InstanceError("the mask is empty: an annotation needs at least one pixel")
        return geometry.rle_bbox(mask), mask_segmentation(mask), area
    if box is None:
        raise InstanceError("an annotation needs a mask or a box")
    x0, y0, x1, y1 = _finite_box(box, "box")
    if not box_has_area((x0, y0, x1, y1)):
        raise InstanceError(f"box {(x0, y0, x1, y1)} has no area (at least 1x1 px)")
    return (x0, y0, x1 - x0, y1 - y0), [], (x1 - x0) * (y1 - y0)


def is_box_only(segmentation: Any) -> bool:
    """A COCO segmentation that holds no mask (``[]``, or only degenerate polygons)."""
    if segmentation is None or segmentation == []:
        return True
    if isinstance(segmentation, list):
        from fusereview.core.geometry import clean_polygons

        return not clean_polygons(segmentation)
    return False


def check_annotation(bbox: Any, segmentation: Any, area: Any, height: int, width: int) -> list[str]:
    """Problems of an annotation against the invariants (empty list: it holds them).

    - area > 0 and finite; bbox 4 finite numbers with w, h > 0, inside the image (±1 px);
    - with a mask: bbox = the mask's tight box (±1 px), area = its pixel count (±0.5);
    - box only (``segmentation: []``): area = w·h (±0.5).
    """
    from fusereview.core.geometry import SegmentationError, rle_area, rle_bbox, segmentation_to_rle

    problems: list[str] = []
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return [f"bbox must be 4 numbers, got {bbox!r}"]
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return [f"bbox is not finite: {bbox!r}"]
    if not isinstance(area, (int, float)) or isinstance(area, bool) or not math.isfinite(area) or area <= 0:
        problems.append(f"area must be > 0, got {area!r}")
    if w <= 0 or h <= 0:
        problems.append(f"bbox has no area: {[x, y, w, h]}")
    tol = BBOX_TOLERANCE_PX
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        problems.append(f"bbox {[x, y, w, h]} leaves the {width}x{height} image")
    if is_box_only(segmentation):
        if isinstance(area, (int, float)) and abs(float(area) - w * h) > 0.5:
            problems.append(f"box-only area {area} is not w*h = {w * h:g}")
        return problems
    try:
        rle = segmentation_to_rle(segmentation, height, width)
    except SegmentationError as exc:
        return [*problems, f"segmentation: {exc}"]
    if rle is None:
        return problems
    pixels = rle_area(rle)
    if pixels <= 0:
        problems.append("segmentation has no pixels")
        return problems
    if isinstance(area, (int, float)) and abs(float(area) - pixels) > 0.5:
        problems.append(f"area {area} is not the mask's pixel count {pixels:g}")
    mx, my, mw, mh = rle_bbox(rle)
    if max(abs(mx - x), abs(my - y), abs(mx + mw - x - w), abs(my + mh - y - h)) > tol:
        problems.append(f"bbox {[x, y, w, h]} is not the mask's tight box {[mx, my, mw, mh]}")
    return problems


# --- edits --------------------------------------------------------------------------------------------


def clip_mask(mask: RLE, box: Sequence[float]) -> RLE:
    """A mask restricted to a box (whole pixels whose centre lies inside it)."""
    from fusereview.core.geometry import mask_to_rle, rle_to_mask

    m = rle_to_mask(mask)
    h, w = m.shape
    x0, y0, x1, y1 = box
    c0, r0 = max(math.floor(x0 + 0.5), 0), max(math.floor(y0 + 0.5), 0)
    c1, r1 = min(math.floor(x1 + 0.5), w), min(math.floor(y1 + 0.5), h)
    out = np.zeros_like(m)
    if c1 > c0 and r1 > r0:
        out[r0:r1, c0:c1] = m[r0:r1, c0:c1]
    return mask_to_rle(out)


def shift_mask(mask: RLE, dx: int, dy: int) -> RLE:
    """A mask moved by whole pixels (what leaves the image is cut)."""
    from fusereview.core.geometry import mask_to_rle, rle_to_mask

    m = rle_to_mask(mask)
    h, w = m.shape
    out = np.zeros_like(m)
    src_r0, src_r1 = max(0, -dy), min(h, h - dy)
    src_c0, src_c1 = max(0, -dx), min(w, w - dx)
    if src_r1 > src_r0 and src_c1 > src_c0:
        out[src_r0 + dy : src_r1 + dy, src_c0 + dx : src_c1 + dx] = m[src_r0:src_r1, src_c0:src_c1]
    return mask_to_rle(out)


def edited_box_mask(
    old_box: Sequence[float], new_box: Sequence[float], mask: RLE | None
) -> tuple[RLE | None, str]:
    """The mask that goes with a moved or resized box, and a note for the reviewer.

    A move (same size) moves the mask by the same whole pixels; a resize keeps the mask's pixels
    inside the new box. The box that is stored is then the mask's tight box
    (:func:`annotation_geometry`), so the note says when it is smaller than the box drawn.
    """
    if mask is None:
        return None, ""
    ow, oh = old_box[2] - old_box[0], old_box[3] - old_box[1]
    nw, nh = new_box[2] - new_box[0], new_box[3] - new_box[1]
    if abs(ow - nw) < 1e-6 and abs(oh - nh) < 1e-6:
        dx, dy = round(new_box[0] - old_box[0]), round(new_box[1] - old_box[1])
        return shift_mask(mask, dx, dy), f"moved the mask by ({dx}, {dy}) px"
    return clip_mask(mask, new_box), "mask clipped to the new box"
