"""Boxes, polygons, masks and RLE: conversions must be exact where they can be."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fusereview.core import geometry as g


def test_box_conversions_round_trip() -> None:
    assert g.xywh_to_xyxy([10, 20, 30, 40]) == (10.0, 20.0, 40.0, 60.0)
    assert g.xyxy_to_xywh((10, 20, 40, 60)) == (10.0, 20.0, 30.0, 40.0)
    assert g.xyxy_to_xywh(g.xywh_to_xyxy((1.5, 2.5, 3.0, 4.0))) == (1.5, 2.5, 3.0, 4.0)


def test_box_iou_known_values_and_shape() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    iou = g.box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])  # empty box: 0, not NaN
    # agrees with pycocotools' own box IoU (xywh)
    ref = mask_utils.iou(
        np.array([g.xyxy_to_xywh(r) for r in a[:1]]), np.array([g.xyxy_to_xywh(r) for r in b]), [0, 0, 0]
    )
    np.testing.assert_allclose(iou[:1], ref)


def test_box_containment_is_intersection_over_the_smaller_box() -> None:
    a = np.array([[0, 0, 20, 20], [0, 0, 0, 0]], dtype=float)
    b = np.array([[5, 5, 10, 10], [10, 0, 30, 20], [-5, -5, 25, 25], [40, 40, 50, 50]], dtype=float)
    c = g.box_containment(a, b)
    assert c.shape == (2, 4)
    np.testing.assert_allclose(c[0], [1.0, 0.5, 1.0, 0.0])  # inside, half over, around, apart
    np.testing.assert_allclose(c[1], [0.0, 0.0, 0.0, 0.0])  # an empty box: 0, not NaN
    np.testing.assert_allclose(g.box_containment(b, a), c.T)


def test_clean_polygons_drops_closing_point_and_degenerate() -> None:
    closed = [0, 0, 10, 0, 10, 10, 0, 0]
    assert g.clean_polygons([closed, [1, 1, 2, 2], [1, 1]]) == [[0.0, 0.0, 10.0, 0.0, 10.0, 10.0]]
    # a triangle whose "closing" would leave fewer than 3 points is left alone
    assert g.clean_polygons([[0, 0, 5, 0, 0, 0]]) == [[0.0, 0.0, 5.0, 0.0, 0.0, 0.0]]


def test_polygons_to_rle_square_is_exact_and_four_numbers_are_not_a_box() -> None:
    rle = g.polygons_to_rle([[2, 2, 12, 2, 12, 12, 2, 12]], 20, 30)
    assert isinstance(rle["counts"], str) and rle["size"] == [20, 30]
    assert g.rle_area(rle) == 100
    assert g.rle_bbox(rle) == (2.0, 2.0, 10.0, 10.0)
    # pycocotools reads a 4-number "polygon" as a bbox; cleaning must drop it instead
    only_degenerate = g.polygons_to_rle([[0, 0, 19, 19]], 20, 30)
    assert g.rle_area(only_degenerate) == 0
    with pytest.raises(g.SegmentationError, match="odd"):
        g.polygons_to_rle([[0, 0, 5, 0, 5]], 20, 30)


def test_segmentation_to_rle_all_forms_agree() -> None:
    h, w = 16, 24
    mask = np.zeros((h, w), dtype=bool)
    mask[3:9, 4:14] = True
    compressed = g.mask_to_rle(mask)
    counts_list = _uncompressed(mask)
    polygon = [[4, 3, 14, 3, 14, 9, 4, 9, 4, 3]]  # with Roboflow's repeated closing point
    as_bytes = {"size": [h, w], "counts": compressed["counts"].encode()}
    for seg in (compressed, as_bytes, {"size": [h, w], "counts": counts_list}, polygon):
        rle = g.segmentation_to_rle(seg, h, w)
        assert rle is not None and isinstance(rle["counts"], str)
        assert np.array_equal(g.rle_to_mask(rle), mask), seg
    assert g.segmentation_to_rle([], h, w) is None
    assert g.segmentation_to_rle([[1, 1, 2, 2]], h, w) is None  # only a degenerate polygon: bbox-only


def _uncompressed(mask: np.ndarray) -> list[int]:
    flat = mask.flatten(order="F").astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    return [0, *runs] if flat[0] else runs


@pytest.mark.parametrize(
    ("seg", "match"),
    [
        ({"size": [8, 8], "counts": [64]}, "size is 8x8"),  # wrong size for a 16x24 image
        ({"size": [16, 24], "counts": [10, 10]}, "cover 20 pixels"),
        ({"size": [16, 24], "counts": [-4, 388]}, "negative"),
        ({"size": [16, 24], "counts": "0"}, "cover"),
        ({"size": [16, 24], "counts": "\x7f\x7f"}, "invalid character"),
        ({"size": [16, 24], "counts": "o"}, "truncated"),  # continuation bit set on the last char
        ({"size": [16], "counts": "0"}, "size must be"),
        ({"counts": "0"}, "'size' and 'counts'"),
        ("polygon", "must be a list"),
        ([[0, 0, 1]], "odd"),
        ([[0, 0, 5, "1", 5, 5]], "finite numbers"),
        ([[0, 0, 5, float("nan"), 5, 5]], "finite numbers"),
    ],
)
def test_segmentation_to_rle_refuses_malformed(seg: object, match: str) -> None:
    with pytest.raises(g.SegmentationError, match=match):
        g.segmentation_to_rle(seg, 16, 24)


def test_rle_counts_decoder_matches_pycocotools() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = rng.random((37, 23)) > rng.uniform(0.1, 0.9)
        rle = g.mask_to_rle(mask)
        runs = g.rle_counts_from_string(rle["counts"])
        assert sum(runs) == mask.size
        assert runs == _uncompressed(mask)


def test_mask_with_hole_and_two_parts_is_kept_exactly_as_rle() -> None:
    mask = np.zeros((40, 50), dtype=bool)
    mask[5:25, 5:25] = True
    mask[10:20, 10:20] = False  # hole
    mask[30:35, 40:48] = True  # second part
    rle = g.mask_to_rle(mask)
    assert np.array_equal(g.rle_to_mask(rle), mask)
    assert g.rle_area(rle) == mask.sum()
    assert g.rle_bbox(rle) == (5.0, 5.0, 43.0, 30.0)
    assert g.mask_has_holes(mask)
    assert not g.mask_has_holes(np.pad(np.ones((5, 5), bool), 2))
    # background touching the border is not a hole, and an empty mask has none
    u_shape = np.ones((10, 10), bool)
    u_shape[0:6, 3:7] = False
    assert not g.mask_has_holes(u_shape)
    assert not g.mask_has_holes(np.zeros((4, 4), bool))


def test_mask_to_polygons_round_trips_pixels() -> None:
    mask = np.zeros((60, 80), dtype=np.uint8)
    cv2.circle(mask, (30, 30), 17, 1, -1)
    mask[50:53, 60:75] = 1  # thin second part
    mask[5, 70] = 1  # a single pixel
    polys = g.mask_to_polygons(mask)
    assert len(polys) == 3
    back = g.rle_to_mask(g.polygons_to_rle(polys, 60, 80))
    assert np.array_equal(back, mask.astype(bool))
    assert g.mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_mask_to_rle_refuses_non_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        g.mask_to_rle(np.zeros((2, 3, 4), bool))


def test_empty_rle_and_polygon_area() -> None:
    assert g.rle_area(g.empty_rle(7, 9)) == 0
    assert g.polygons_area([[0, 0, 10, 0, 10, 10, 0, 10], [20, 20, 30, 20, 20, 30]]) == 150.0
