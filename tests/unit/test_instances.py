"""The geometry rule (core.instances): a detection becomes what is shown, saved and exported."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusereview.core.geometry import mask_to_rle, polygons_to_rle, rle_area, rle_bbox, rle_to_mask
from fusereview.core.instances import (
    InstanceError,
    annotation_geometry,
    check_annotation,
    clip_mask,
    detection_instance,
    edited_box_mask,
    mask_segmentation,
    shift_mask,
)

H, W = 120, 160


def _mask(*rects: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in rects:
        m[y0:y1, x0:x1] = True
    return m


def test_mask_bleeding_onto_other_objects_is_cut_to_the_box() -> None:
    """Regression: accepting kept blobs on other fuses; a 35x45 box was exported as 322x213."""
    # the object fills its box; two blobs lie on neighbours far away
    m = _mask((20, 30, 55, 75), (120, 5, 150, 20), (100, 90, 140, 118))
    inst = detection_instance((20, 30, 55, 75), mask_to_rle(m), H, W)
    assert inst.mask is not None
    assert inst.box == (20.0, 30.0, 55.0, 75.0)
    kept = rle_to_mask(inst.mask)
    assert kept.sum() == 35 * 45 and not kept[:, 100:].any()
    assert inst.removed_pixels == m.sum() - 35 * 45
    assert "removed" in inst.note


def test_fragments_inside_the_margin_are_removed_but_big_parts_stay() -> None:
    body = (20, 20, 60, 60)
    speck = (61, 20, 62, 22)  # 2 px touching the margin: a fragment
    inst = detection_instance(body, mask_to_rle(_mask(body, speck)), H, W)
    assert rle_area(inst.mask) == 40 * 40
    # an object split in two halves of similar size (an occluder): both halves are kept
    halves = _mask((20, 20, 38, 60), (42, 20, 60, 60))
    inst = detection_instance(body, mask_to_rle(halves), H, W)
    assert rle_area(inst.mask) == halves.sum()


def test_empty_mask_becomes_box_only_with_the_predicted_box() -> None:
    """Regression: an empty mask became bbox [0,0,0,0], area 0; the predicted box was thrown away."""
    inst = detection_instance((10.5, 20, 50, 70), mask_to_rle(np.zeros((H, W), bool)), H, W)
    assert inst.mask is None and inst.box == (10.5, 20.0, 50.0, 70.0)
    assert "box only" in inst.note
    bbox, seg, area = annotation_geometry(inst.mask, inst.box)
    assert bbox == (10.5, 20.0, 39.5, 50.0) and seg == [] and area == 39.5 * 50
    assert check_annotation(bbox, seg, area, H, W) == []


def test_a_mask_that_disagrees_with_its_box_is_dropped() -> None:
    # the mask covers a quarter of its box: its tight box overlaps the box at IoU 0.25
    inst = detection_instance((20, 20, 60, 60), mask_to_rle(_mask((20, 20, 40, 40))), H, W)
    assert inst.mask is None and inst.box == (20.0, 20.0, 60.0, 60.0)
    assert "disagrees" in inst.note
    # one that nearly fills it is kept, and the box becomes the mask's
    inst = detection_instance((20, 20, 60, 60), mask_to_rle(_mask((21, 21, 60, 59))), H, W)
    assert inst.mask is not None and inst.box == (21.0, 21.0, 60.0, 59.0)


def test_box_is_clipped_and_bad_boxes_refused() -> None:
    inst = detection_instance((-5, -5, 30, 30), None, H, W)
    assert inst.box == (0.0, 0.0, 30.0, 30.0) and inst.model_box == (-5.0, -5.0, 30.0, 30.0)
    for box in ((200, 10, 220, 30), (10, 10, 10.5, 40), (math.nan, 0, 5, 5), (0, 0, math.inf, 5)):
        with pytest.raises(InstanceError):
            detection_instance(box, None, H, W)


def test_annotation_geometry_holds_exactly_the_mask_pixels() -> None:
    m = _mask((10, 10, 50, 40))
    m[20:25, 20:25] = False  # a hole: polygons cannot hold it
    bbox, seg, area = annotation_geometry(mask_to_rle(m))
    assert isinstance(seg, dict) and area == m.sum() and bbox == (10.0, 10.0, 40.0, 30.0)
    solid = _mask((10, 10, 50, 40), (30, 40, 35, 60))
    bbox, seg, area = annotation_geometry(mask_to_rle(solid))
    assert isinstance(seg, list)
    assert np.array_equal(rle_to_mask(polygons_to_rle(seg, H, W)), solid)
    with pytest.raises(InstanceError, match="empty"):
        annotation_geometry(mask_to_rle(np.zeros((H, W), bool)))
    with pytest.raises(InstanceError, match="no area"):
        annotation_geometry(None, (5, 5, 5, 9))


def test_check_annotation_names_each_broken_invariant() -> None:
    rle = mask_to_rle(_mask((10, 10, 30, 20)))
    assert check_annotation([10, 10, 20, 10], rle, 200, H, W) == []
    assert any("area" in p for p in check_annotation([10, 10, 20, 10], rle, 150, H, W))
    assert any("tight box" in p for p in check_annotation([0, 0, 40, 30], rle, 200, H, W))
    assert any("area must be > 0" in p for p in check_annotation([0, 0, 0, 0], rle, 0, H, W))
    assert any("w*h" in p for p in check_annotation([0, 0, 4, 5], [], 10, H, W))
    assert any("leaves" in p for p in check_annotation([150, 0, 40, 5], [], 200, H, W))


def test_box_edits_move_or_clip_the_mask() -> None:
    rle = mask_to_rle(_mask((10, 10, 30, 20)))
    moved, note = edited_box_mask((10, 10, 30, 20), (15, 13, 35, 23), rle)
    assert rle_bbox(moved) == (15.0, 13.0, 20.0, 10.0) and rle_area(moved) == 200 and "moved" in note
    clipped, note = edited_box_mask((10, 10, 30, 20), (10, 10, 20, 20), rle)
    assert rle_bbox(clipped) == (10.0, 10.0, 10.0, 10.0) and "clipped" in note
    assert edited_box_mask((0, 0, 1, 1), (0, 0, 2, 2), None) == (None, "")
    assert rle_area(shift_mask(rle, 200, 0)) == 0  # moved off the image
    assert rle_area(clip_mask(rle, (40, 40, 60, 60))) == 0


@settings(max_examples=60, deadline=None)
@given(
    rects=st.lists(
        st.tuples(st.integers(0, W - 2), st.integers(0, H - 2), st.integers(1, 60), st.integers(1, 60)),
        min_size=0,
        max_size=4,
    ),
    box=st.tuples(st.floats(-20, W + 20), st.floats(-20, H + 20), st.floats(0, 90), st.floats(0, 90)),
    noise=st.integers(0, 2**32 - 1),
)
def test_every_instance_holds_the_invariants(rects, box, noise) -> None:
    """Whatever the model returns, the instance is either refused or a valid annotation."""
    m = _mask(*[(x, y, min(x + w, W), min(y + h, H)) for x, y, w, h in rects])
    rng = np.random.default_rng(noise)
    m |= rng.random((H, W)) < 0.002
    x, y, w, h = box
    try:
        inst = detection_instance((x, y, x + w, y + h), mask_to_rle(m), H, W)
    except InstanceError:
        return
    bbox, seg, area = annotation_geometry(inst.mask, inst.box)
    assert check_annotation(bbox, seg, area, H, W) == []
    if inst.mask is not None:
        assert rle_bbox(inst.mask) == bbox
        # nothing outside the model's box plus a margin survives
        x0, y0, x1, y1 = inst.model_box
        margin = max(2.0, 0.05 * max(x1 - x0, y1 - y0))
        kept = rle_to_mask(inst.mask)
        ys, xs = np.nonzero(kept)
        assert xs.min() >= math.floor(x0 - margin) and xs.max() < math.ceil(x1 + margin)
        assert ys.min() >= math.floor(y0 - margin) and ys.max() < math.ceil(y1 + margin)


def test_mask_segmentation_is_exact_for_random_blobs() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        m = rng.random((H, W)) < 0.02
        m[rng.integers(0, H - 30) :][:30, 40:80] = True
        seg = mask_segmentation(mask_to_rle(m))
        back = rle_to_mask(seg) if isinstance(seg, dict) else rle_to_mask(polygons_to_rle(seg, H, W))
        assert np.array_equal(back, m)
