"""Per-image errors on a hand-built case whose every outcome is known."""

from __future__ import annotations

from typing import Any

import pytest

from fusereview.evaluation import per_image_errors, run_evaluation


def box_ann(ann_id: int, image_id: int, bbox: list[float], *, iscrowd: int = 0) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 0,
        "bbox": bbox,
        "area": bbox[2] * bbox[3],
        "iscrowd": iscrowd,
    }


def det(image_id: int, bbox: list[float], score: float) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": 0, "bbox": bbox, "score": score}


@pytest.fixture()
def case() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # Roboflow-style ids from 0. Image 0: object A (small, id 0) and B (medium, id 1);
    # image 1: no object; image 2: object C (id 2), never detected.
    gt = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in range(3)],
        "categories": [{"id": 0, "name": "fuse neutrals"}],
        "annotations": [
            box_ann(0, 0, [10, 10, 20, 20]),
            box_ann(1, 0, [50, 50, 40, 40]),
            box_ann(2, 2, [5, 5, 30, 30]),
        ],
    }
    results = [
        det(0, [10, 10, 20, 20], 0.9),  # 0: A exactly (IoU 1)
        det(0, [12, 10, 20, 20], 0.8),  # 1: A again (IoU 360/440 = 0.818): duplicate
        det(0, [70, 0, 10, 10], 0.7),  # 2: nothing there: false positive
        det(0, [50, 50, 40, 28], 0.6),  # 3: B, IoU 1120/1600 = 0.7: TP at 0.5, not at 0.75
        det(1, [0, 0, 10, 10], 0.5),  # 4: image without objects: false positive
    ]
    return gt, results


def test_outcomes_at_iou_05(case: Any) -> None:
    gt, results = case
    images = per_image_errors(gt, results, iou=0.5)
    assert [e.image_id for e in images] == [0, 1, 2]
    img0, img1, img2 = images
    assert sorted((o.result_index, o.annotation_id) for o in img0.true_positives) == [(0, 0), (3, 1)]
    ious = {o.result_index: o.iou for o in img0.true_positives}
    assert ious[0] == pytest.approx(1.0) and ious[3] == pytest.approx(0.7)
    assert [(o.result_index, o.annotation_id) for o in img0.duplicates] == [(1, 0)]
    assert img0.duplicates[0].iou == pytest.approx(360 / 440)
    assert [o.result_index for o in img0.false_positives] == [2]
    assert img0.false_positives[0].iou == 0.0 and img0.false_positives[0].annotation_id is None
    assert img0.false_negatives == []
    assert [o.result_index for o in img1.false_positives] == [4]
    assert [m.annotation_id for m in img2.false_negatives] == [2]
    assert img2.false_negatives[0].best_iou == 0.0
    assert (img0.n_errors, img1.n_errors, img2.n_errors) == (2, 1, 1)


def test_outcomes_at_iou_075(case: Any) -> None:
    gt, results = case
    img0 = per_image_errors(gt, results, iou=0.75)[0]
    assert [o.result_index for o in img0.true_positives] == [0]
    assert [o.result_index for o in img0.duplicates] == [1]  # 0.818 >= 0.75: still a duplicate
    fps = {o.result_index: o for o in img0.false_positives}
    assert set(fps) == {2, 3}
    assert fps[3].iou == pytest.approx(0.7) and fps[3].annotation_id == 1  # badly placed, not spurious
    assert [(m.annotation_id, round(m.best_iou, 3)) for m in img0.false_negatives] == [(1, 0.7)]


def test_breakdowns_pr_curve_and_best_f1(case: Any) -> None:
    gt, results = case
    analysis = run_evaluation(gt, results).errors(0.5)
    t = analysis.totals
    assert (t.tp, t.fp, t.duplicates, t.fn) == (2, 2, 1, 1)
    assert analysis.by_category[0] == t
    # TP and FN are sized by the object, FP and duplicates by the detection.
    small, medium = analysis.by_size["small"], analysis.by_size["medium"]
    assert (small.tp, small.duplicates, small.fp, small.fn) == (1, 1, 2, 1)  # C is 30x30: small
    assert (medium.tp, medium.fn) == (1, 0)
    # Scores .9 T, .8 F, .7 F, .6 T, .5 F over 3 objects.
    curve = analysis.pr_curve
    assert curve.scores == [0.9, 0.8, 0.7, 0.6, 0.5]
    assert curve.precision == pytest.approx([1.0, 0.5, 1 / 3, 0.5, 0.4])
    assert curve.recall == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    best = analysis.best_f1
    assert best is not None and best.threshold == 0.6
    assert best.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    worst = analysis.worst_images()
    assert worst[0].image_id == 0


def test_score_threshold_keeps_caller_indices(case: Any) -> None:
    gt, results = case
    img0 = per_image_errors(gt, results, iou=0.5, score_threshold=0.65)[0]
    assert sorted(o.result_index for o in img0.true_positives) == [0]
    assert [o.result_index for o in img0.duplicates] == [1]
    assert [m.annotation_id for m in img0.false_negatives] == [1]


def test_detection_on_crowd_region_is_ignored(case: Any) -> None:
    gt, results = case
    gt["annotations"].append(box_ann(3, 1, [0, 0, 12, 12], iscrowd=1))
    img1 = per_image_errors(gt, results, iou=0.5)[1]
    assert img1.false_positives == [] and img1.ignored == 1
    assert img1.false_negatives == []  # a crowd region is never "missed"


def test_round_trip_through_json(case: Any) -> None:
    import json

    from fusereview.evaluation import Evaluation

    gt, results = case
    ev = run_evaluation(gt, results)
    back = Evaluation.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert back.metrics.values == ev.metrics.values
    assert back.errors(0.75).totals == ev.errors(0.75).totals
    assert [e.n_errors for e in back.errors(0.5).images] == [e.n_errors for e in ev.errors(0.5).images]
