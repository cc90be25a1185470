"""Per-image verdicts are taken at a named operating point, not at the evaluator's 0.05 floor.

Was: base vs fine-tuned on a test split where AP went 0.000 -> 0.476 said "0 fixed, 0 broken,
0 better, 17 worse", because every detection scoring >= 0.05 counted (366 weak false positives).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusereview.cli import main
from fusereview.core.project import Project
from fusereview.evaluation.cocoeval import run_evaluation
from fusereview.evaluation.compare import compare
from fusereview.evaluation.fixtures import make_case
from fusereview.evaluation.operating_point import (
    REVIEW_THRESHOLD_SETTING,
    choose_operating_point,
    counts_at,
)


def _base_and_tuned(gt: dict) -> tuple[list[dict], list[dict]]:
    """Base: one confident box beside each object (AP 0). Tuned: each object found, plus 15 weak
    false positives per image, as a fine-tuned model at threshold 0.05 gives."""
    rng = np.random.default_rng(0)
    base, tuned = [], []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        base.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x + 3 * w, y, w, h],
                "score": 0.8,
            }
        )
        tuned.append(
            {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": [x, y, w, h], "score": 0.9}
        )
    for im in gt["images"]:
        for _ in range(15):
            cx, cy = rng.uniform(0, 400, 2)
            tuned.append(
                {
                    "image_id": im["id"],
                    "category_id": gt["categories"][0]["id"],
                    "bbox": [cx, cy, 20, 20],
                    "score": 0.06,
                }
            )
    return base, tuned


def test_weak_false_positives_do_not_turn_a_better_model_into_a_worse_one() -> None:
    gt, _ = make_case(20, seed=3, with_masks=False)
    base, tuned = _base_and_tuned(gt)
    a, b = run_evaluation(gt, base), run_evaluation(gt, tuned)
    assert a.metrics["AP"] == 0.0 and b.metrics["AP"] > 0.5
    cmp = compare(a, b)
    counts = cmp.status_counts()
    assert counts["fixed"] == 20 and counts["worse"] == 0 and counts["broken"] == 0
    # A found nothing: the best F1 of B is the operating point, and the output says so
    assert cmp.operating_point.threshold == pytest.approx(0.9)
    assert cmp.operating_point.source == "best F1 of B; A found no object"
    assert cmp.verdict.startswith("B is better (ΔAP +") and "20 images fixed, 0 broken" in cmp.verdict
    text = cmp.format_table()
    assert "per-image verdicts at score >= 0.90 (best F1 of B; A found no object), IoU 0.5" in text
    assert "95% CI of the change" in text
    # at every detection (the evaluator's floor) the same images would have been "worse"
    floor = compare(a, b, score_threshold=0.0)
    assert floor.status_counts()["worse"] > 0


def test_counts_at_a_threshold_rematch_nothing() -> None:
    gt, results = make_case(20, seed=8)
    full = run_evaluation(gt, results)
    for t in (0.2, 0.5, 0.8):
        cut = run_evaluation(gt, results, score_threshold=t)  # the evaluator run on the kept ones
        for e_full, e_cut in zip(full.errors(0.5).images, cut.errors(0.5).images, strict=True):
            assert counts_at(e_full, t) == e_cut.counts


def test_the_operating_point_is_given_then_review_threshold_then_best_f1() -> None:
    gt, results = make_case(10, seed=9)
    analysis = run_evaluation(gt, results).errors(0.5)
    assert choose_operating_point(analysis, given=0.3).source == "given"
    assert choose_operating_point(analysis, review_threshold=0.4).threshold == 0.4
    op = choose_operating_point(analysis)
    assert op.threshold == analysis.best_f1.threshold and op.source == "best F1 of A"


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_compare_command_on_a_project_uses_its_review_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fusereview.core.coco import load_dataset
    from fusereview.core.synthetic import generate_dataset

    data = generate_dataset(tmp_path / "ds", images=12, size=128, seed=1)
    gt = load_dataset(data).splits["test"].data
    base, tuned = _base_and_tuned(gt)
    a, b = _write(tmp_path / "a.json", base), _write(tmp_path / "b.json", tuned)
    with Project.create(tmp_path / "proj", load_dataset(data)) as project:
        project.set_setting(REVIEW_THRESHOLD_SETTING, 0.5)
    args = ["compare", str(tmp_path / "proj"), "--predictions", str(a), "--predictions", str(b)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "per-image verdicts at score >= 0.50 (the project's review threshold)" in out
    assert out.splitlines()[2].startswith("verdict: B is better")
    assert main([*args, "--score-threshold", "0.05"]) == 0
    assert "score >= 0.05 (given)" in capsys.readouterr().out


def test_errors_at_a_threshold_show_low_scoring_matches_as_missed_objects() -> None:
    from fusereview.evaluation.operating_point import errors_at

    gt, results = make_case(15, seed=10)
    full = run_evaluation(gt, results)
    boxes = {a["id"]: a["bbox"] for a in gt["annotations"]}
    for e in full.errors(0.5).images:
        cut = errors_at(e, 0.6)
        assert cut.counts == counts_at(e, 0.6)
        lost = [o for o in e.true_positives if o.score < 0.6]
        missed = cut.false_negatives[len(e.false_negatives) :]
        assert [m.annotation_id for m in missed] == [o.annotation_id for o in lost]
        assert all(m.bbox == boxes[m.annotation_id] for m in missed)  # the object's own box
