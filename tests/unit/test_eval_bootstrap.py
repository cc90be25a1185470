"""The paired bootstrap of ΔAP: exact against pycocotools, seeded, and right on known cases."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusereview.evaluation.bootstrap import MatchTable, bootstrap, paired_bootstrap
from fusereview.evaluation.cocoeval import Evaluation, run_evaluation
from fusereview.evaluation.compare import compare
from fusereview.evaluation.fixtures import make_case


def _with_crowd(gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[dict, list]:
    """Add a crowd region over the first image's first object (matches to it are ignored)."""
    gt = copy.deepcopy(gt)
    a = gt["annotations"][0]
    crowd = {**a, "id": max(x["id"] for x in gt["annotations"]) + 1, "iscrowd": 1}
    crowd.pop("segmentation")
    x, y, w, h = a["bbox"]
    crowd["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    gt["annotations"].append(crowd)
    return gt, results


CASES = [
    pytest.param(0, 1, "pycocotools", "bbox", id="one-class"),
    pytest.param(1, 3, "pycocotools", "bbox", id="three-classes"),
    pytest.param(2, 2, "pycocotools", "segm", id="masks"),
    pytest.param(3, 2, "faster", "bbox", id="faster-backend"),
]


@pytest.mark.parametrize(("seed", "n_categories", "backend", "iou_type"), CASES)
def test_unit_weights_give_pycocotools_ap_ap50_ap75(
    seed: int, n_categories: int, backend: str, iou_type: str
) -> None:
    if backend == "faster":
        pytest.importorskip("faster_coco_eval")
    gt, results = _with_crowd(*make_case(25, seed=seed, n_categories=n_categories))
    ev = run_evaluation(gt, results, iou_type=iou_type, backend=backend)
    assert ev.matches is not None
    got = ev.matches.ap(np.ones((1, ev.matches.n_images)))
    for name in ("AP", "AP50", "AP75"):
        assert got[name][0] == pytest.approx(ev.metrics[name], abs=1e-12), name


def _expanded(gt: dict, results: list, counts: np.ndarray) -> tuple[dict, list]:
    """The resample as a real dataset: image i repeated counts[i] times (new ids, same order)."""
    order = {im["id"]: k for k, im in enumerate(gt["images"])}
    width = int(counts.max()) + 1
    images, anns, res = [], [], []
    for im in gt["images"]:
        for c in range(int(counts[order[im["id"]]])):
            images.append({**im, "id": order[im["id"]] * width + c})
    new_ids = {}
    for im in images:
        new_ids.setdefault(im["id"] // width, []).append(im["id"])
    for a in gt["annotations"]:
        for new in new_ids.get(order[a["image_id"]], []):
            anns.append({**a, "id": len(anns) + 1, "image_id": new})
    for r in results:
        for new in new_ids.get(order[r["image_id"]], []):
            res.append({**r, "image_id": new})
    return {"images": images, "categories": gt["categories"], "annotations": anns}, res


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=12, max_size=12).filter(lambda c: sum(c) > 0))
def test_a_weighted_resample_is_pycocotools_on_the_repeated_images(counts: list[int]) -> None:
    gt, results = make_case(12, seed=7, n_categories=2)
    table = run_evaluation(gt, results).matches
    assert table is not None
    w = np.asarray(counts, dtype=float)
    got = table.ap(w[None])
    big_gt, big_res = _expanded(gt, results, w)
    if not any(a for a in big_gt["annotations"]):
        return
    want = run_evaluation(big_gt, big_res).metrics
    for name in ("AP", "AP50", "AP75"):
        if want[name] is None:
            assert np.isnan(got[name][0])
        else:
            assert got[name][0] == pytest.approx(want[name], abs=1e-12), name


def test_identical_models_show_no_clear_difference() -> None:
    gt, results = make_case(30, seed=1)
    a = run_evaluation(gt, results)
    b = run_evaluation(gt, copy.deepcopy(results))
    cmp = compare(a, b)
    ci = cmp.intervals["AP"]
    assert ci is not None and ci.value == 0 and ci.low == 0 and ci.high == 0
    assert cmp.verdict.startswith("no clear difference (ΔAP +0.000, 95% CI +0.000…+0.000")


def _perfect(gt: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in gt["annotations"]
    ]


def test_a_strictly_better_model_is_better_and_the_reverse_is_worse() -> None:
    gt, results = make_case(30, seed=2, with_masks=False)
    base = run_evaluation(gt, results)
    best = run_evaluation(gt, _perfect(gt))
    up = compare(base, best)
    assert up.intervals["AP"].low > 0
    assert up.verdict.startswith("B is better (ΔAP +")
    assert " images fixed, 0 broken)" in up.verdict
    down = compare(best, base)
    assert down.intervals["AP"].high < 0 and down.verdict.startswith("B is worse (ΔAP -")


def test_seeded_reproducible_and_the_seed_matters() -> None:
    gt, results = make_case(20, seed=3)
    a = run_evaluation(gt, results).matches
    b = run_evaluation(gt, _perfect(gt)).matches
    assert a is not None and b is not None
    one, two = paired_bootstrap(a, b, seed=5), paired_bootstrap(a, b, seed=5)
    assert one == two
    other = paired_bootstrap(a, b, seed=6)
    assert (other["AP"].low, other["AP"].high) != (one["AP"].low, one["AP"].high)
    single = bootstrap(a, resamples=300, seed=1)["AP"]
    assert single is not None and single.low <= single.value <= single.high


def test_saved_evaluations_keep_the_matches() -> None:
    gt, results = make_case(15, seed=4)
    ev = run_evaluation(gt, results, iou_type="segm")
    back = Evaluation.from_dict(ev.to_dict())
    assert back.matches is not None
    assert paired_bootstrap(back.matches, ev.matches, resamples=200)["AP"].high == 0.0
    assert MatchTable.from_dict(ev.matches.to_dict()).to_dict() == ev.matches.to_dict()


def test_without_matches_the_verdict_says_why_there_is_no_interval() -> None:
    gt, results = make_case(10, seed=5)
    a, b = run_evaluation(gt, results), run_evaluation(gt, _perfect(gt))
    a.matches = None  # an evaluation saved by an older version
    cmp = compare(a, b)
    assert cmp.intervals == {} and cmp.verdict.startswith("no verdict on AP (ΔAP +")
