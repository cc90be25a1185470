"""COCO metrics: equal to plain pycocotools, id 0 safe, N/A shown as N/A, faster backend agrees."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fusereview.core.errors import FusereviewError
from fusereview.evaluation import METRIC_NAMES, evaluate, run_evaluation
from fusereview.evaluation.cocoeval import faster_coco_eval_available
from fusereview.evaluation.fixtures import make_case, renumber
from fusereview.evaluation.remap import EvaluationInputError


def plain_pycocotools(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> np.ndarray:
    """What a user gets with pycocotools alone (on copies: pycocotools mutates its inputs)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def as_array(values: dict[str, float | None]) -> np.ndarray:
    return np.array([-1.0 if values[n] is None else values[n] for n in METRIC_NAMES])


@pytest.fixture(scope="module")
def case_from_1() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return make_case(25, seed=3, id_start=1, n_categories=2)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_equals_plain_pycocotools_when_ids_start_at_1(case_from_1: Any, iou_type: str) -> None:
    gt, results = case_from_1
    metrics = evaluate(gt, results, iou_type=iou_type)
    np.testing.assert_array_equal(as_array(metrics.values), plain_pycocotools(gt, results, iou_type))
    assert 0.0 < metrics["AP50"] < 1.0  # the case is neither trivial nor empty


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ids_from_0_equal_pycocotools_on_data_renumbered_from_1(case_from_1: Any, iou_type: str) -> None:
    gt1, results1 = case_from_1
    gt0, results0 = renumber(gt1, results1, -1)
    assert min(a["id"] for a in gt0["annotations"]) == 0
    ours = as_array(evaluate(gt0, results0, iou_type=iou_type).values)
    np.testing.assert_array_equal(ours, plain_pycocotools(gt1, results1, iou_type))


def test_regression_naive_pycocotools_is_wrong_with_annotation_id_0() -> None:
    # One image, two objects, perfect detections. pycocotools records "matched to annotation 0"
    # as unmatched, so with Roboflow's ids naive evaluation loses a true positive.
    gt = {
        "images": [{"id": 0, "file_name": "a.jpg", "width": 200, "height": 200}],
        "categories": [{"id": 0, "name": "fuse"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 0, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0},
            {
                "id": 1,
                "image_id": 0,
                "category_id": 0,
                "bbox": [100, 100, 50, 50],
                "area": 2500,
                "iscrowd": 0,
            },
        ],
    }
    results = [
        {"image_id": 0, "category_id": 0, "bbox": [10, 10, 50, 50], "score": 0.9},
        {"image_id": 0, "category_id": 0, "bbox": [100, 100, 50, 50], "score": 0.8},
    ]
    naive = plain_pycocotools(gt, results, "bbox")
    assert naive[1] < 1.0  # the bug this module exists for
    ours = evaluate(gt, results, iou_type="bbox")
    assert ours["AP50"] == pytest.approx(1.0)
    assert ours["AP"] == pytest.approx(1.0)
    errors = run_evaluation(gt, results).errors(0.5).images[0]
    assert sorted(tp.annotation_id for tp in errors.true_positives) == [0, 1]
    assert errors.false_negatives == [] and errors.false_positives == []


def test_size_without_objects_is_none_and_shown_as_na() -> None:
    gt, results = make_case(6, seed=4, id_start=0)
    # Keep only small and medium objects (and their detections' images): no large object at all.
    gt["annotations"] = [a for a in gt["annotations"] if a["area"] < 96**2]
    metrics = evaluate(gt, results, iou_type="bbox")
    assert metrics["APl"] is None and metrics["ARl"] is None
    assert metrics["AP"] is not None
    table = metrics.format_table()
    assert "area= large | maxDets=100 ] =   N/A" in table
    assert "-1.000" not in table and "-100" not in table


def test_empty_results_give_zero_not_na() -> None:
    gt, _ = make_case(3, seed=5)
    ev = run_evaluation(gt, [], iou_type="segm")
    assert ev.metrics["AP"] == 0.0 and ev.metrics["AR100"] == 0.0
    assert ev.errors(0.5).totals.fn == len(gt["annotations"])
    assert ev.errors(0.5).best_f1 is None


def test_inputs_are_not_modified(case_from_1: Any) -> None:
    gt, results = case_from_1
    before = copy.deepcopy((gt, results))
    run_evaluation(gt, results, iou_type="segm")
    assert (gt, results) == before


def test_unknown_image_in_results_names_file_and_field(case_from_1: Any) -> None:
    gt, results = case_from_1
    bad = [*results[:3], {**results[3], "image_id": 999}]
    with pytest.raises(EvaluationInputError, match=r"preds\.json: \[3\]\.image_id: image 999"):
        run_evaluation(gt, bad, results_name="preds.json")


def test_missing_gt_area_names_file_and_field(case_from_1: Any) -> None:
    gt, results = case_from_1
    gt = copy.deepcopy(gt)
    del gt["annotations"][2]["area"]
    with pytest.raises(EvaluationInputError, match=r"_annotations\.coco\.json: annotations\[2\]\.area"):
        run_evaluation(gt, results, gt_name="_annotations.coco.json")
    assert issubclass(EvaluationInputError, FusereviewError)


def test_segm_results_without_mask_are_refused() -> None:
    gt, results = make_case(2, seed=1, with_masks=False)
    with pytest.raises(EvaluationInputError, match=r"\[0\]\.segmentation: missing"):
        run_evaluation(gt, results, iou_type="segm")


def test_polygon_results_are_accepted_for_segm() -> None:
    gt, results = make_case(4, seed=6, id_start=1)
    polys = copy.deepcopy(results)
    for r in polys:  # a box-shaped polygon instead of the RLE
        x, y, w, h = r["bbox"]
        r["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    metrics = evaluate(gt, polys, iou_type="segm")
    assert metrics["AP50"] is not None and 0.0 < metrics["AP50"] <= 1.0


def test_unknown_backend_is_refused(case_from_1: Any) -> None:
    gt, results = case_from_1
    with pytest.raises(FusereviewError, match="unknown evaluation backend"):
        run_evaluation(gt, results, backend="nope")


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_faster_coco_eval_gives_the_same_numbers_and_errors(case_from_1: Any, iou_type: str) -> None:
    if not faster_coco_eval_available():
        pytest.skip("faster-coco-eval is not installed")
    gt, results = renumber(*case_from_1, -1)  # ids from 0: the remapping must hold for both
    ref = run_evaluation(gt, results, iou_type=iou_type)
    fast = run_evaluation(gt, results, iou_type=iou_type, backend="faster")
    np.testing.assert_allclose(
        as_array(fast.metrics.values), as_array(ref.metrics.values), rtol=0, atol=1e-12
    )
    for t in (0.5, 0.75):
        a, b = ref.errors(t), fast.errors(t)
        assert a.totals == b.totals
        for ea, eb in zip(a.images, b.images, strict=True):
            assert ea.image_id == eb.image_id
            assert sorted(o.result_index for o in ea.true_positives) == sorted(
                o.result_index for o in eb.true_positives
            )
            assert sorted(o.result_index for o in ea.duplicates) == sorted(
                o.result_index for o in eb.duplicates
            )
            assert sorted(m.annotation_id for m in ea.false_negatives) == sorted(
                m.annotation_id for m in eb.false_negatives
            )


def test_ground_truth_without_mask_is_refused_or_counted_as_box() -> None:
    gt, results = make_case(4, seed=8, id_start=1)
    boxed = copy.deepcopy(gt)
    x, y, w, h = boxed["annotations"][1]["bbox"]
    boxed["annotations"][1]["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    gt["annotations"][1]["segmentation"] = []
    with pytest.raises(EvaluationInputError, match=r"annotations\[1\]\.segmentation: empty"):
        evaluate(gt, results, iou_type="segm")
    as_box = evaluate(gt, results, iou_type="segm", missing_masks="box")
    assert as_box.values == evaluate(boxed, results, iou_type="segm").values
    assert evaluate(gt, results, iou_type="bbox").values  # boxes need no mask


def test_numpy_numbers_in_results_are_accepted(case_from_1: Any) -> None:
    gt, results = case_from_1
    as_numpy = [
        {
            **r,
            "image_id": np.int64(r["image_id"]),
            "score": np.float64(r["score"]),
            "bbox": np.array(r["bbox"]).tolist(),
        }
        for r in results
    ]
    assert evaluate(gt, as_numpy).values == evaluate(gt, results).values
    bad = [{**results[0], "score": "0.9"}]
    with pytest.raises(EvaluationInputError, match=r"\[0\]\.score: missing or not a number"):
        evaluate(gt, bad)
