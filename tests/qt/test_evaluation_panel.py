"""The evaluation panel: metrics, PR curve, images by errors, signals, comparison filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fusereview.evaluation import run_evaluation
from fusereview.evaluation.run_folder import write_evaluation_file
from fusereview.qt.panels.evaluation import COLORS, EvaluationPanel


def box_case() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Three images (ids from 0); results A miss image 0, results B miss image 2."""
    gt = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in range(3)],
        "categories": [{"id": 0, "name": "fuse"}],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 0, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0}
            for i in range(3)
        ],
    }

    def res(skip: int) -> list[dict[str, Any]]:
        out = [
            {"image_id": i, "category_id": 0, "bbox": [10, 10, 30, 30], "score": 0.9}
            for i in range(3)
            if i != skip
        ]
        out.append({"image_id": 1, "category_id": 0, "bbox": [60, 60, 20, 20], "score": 0.2})  # low-score FP
        return out

    return gt, res(0), res(2)


@pytest.fixture
def panel(qtbot) -> EvaluationPanel:
    w = EvaluationPanel()
    qtbot.addWidget(w)
    w.resize(1000, 500)
    w.show()
    return w


def test_load_file_fills_metrics_pr_curve_and_worst_images(panel: EvaluationPanel, tmp_path: Path) -> None:
    gt, a, _ = box_case()
    path = write_evaluation_file(
        tmp_path / "a.json", {"bbox": run_evaluation(gt, a)}, split="test", model="A"
    )
    panel.load_file(path)
    ap50_row = 1
    assert panel.metrics_table.item(ap50_row, 0).text() not in ("", "—", "N/A")
    assert panel.metrics_table.item(ap50_row, 1).text() == "—"  # no mask evaluation: not N/A, not 0
    assert panel.metrics_table.item(5, 0).text() == "N/A"  # APl: no large object
    assert panel.images_table.rowCount() == 3
    assert panel.images_table.item(0, 1).text() == "1"  # worst first
    recall, precision = panel.pr_curve.getData()  # one point per distinct score: 0.9 and 0.2
    assert list(recall) == pytest.approx([2 / 3, 2 / 3]) and list(precision) == pytest.approx([1.0, 2 / 3])


def test_click_emits_image_and_overlays(panel: EvaluationPanel, qtbot, tmp_path: Path) -> None:
    gt, a, _ = box_case()
    panel.set_evaluation({"bbox": run_evaluation(gt, a)}, split="test", label="A")
    with qtbot.waitSignal(panel.imageActivated, timeout=2000) as sig:
        panel.images_table.selectRow(0)
    image_id, overlays = sig.args
    assert image_id in (0, 1)  # both have one error; ties go by id
    assert (
        overlays["colors"] == COLORS
        and overlays["colors"]["false_negatives"] != overlays["colors"]["false_positives"]
    )
    e = panel.image_errors(image_id)
    assert len(overlays["false_negatives"]) == len(e.false_negatives)
    assert len(overlays["false_positives"]) == len(e.false_positives)
    assert all(len(o["bbox"]) == 4 for kind in ("true_positives", "false_negatives") for o in overlays[kind])


def test_send_to_review_carries_missed_and_low_score_false_positives(panel: EvaluationPanel, qtbot) -> None:
    gt, a, _ = box_case()
    panel.set_evaluation({"bbox": run_evaluation(gt, a)}, split="test")
    panel.fp_score.setValue(0.5)
    with qtbot.waitSignal(panel.reviewRequested, timeout=2000) as sig:
        panel.send_button.click()
    fns, fps = sig.args
    assert [(f["image_id"], f["annotation_id"]) for f in fns] == [(0, 0)]
    assert [(f["image_id"], f["score"]) for f in fps] == [(1, 0.2)]
    panel.fp_score.setValue(0.1)
    panel.send_to_review()
    assert panel.review_lists()[1] == []


def test_comparison_filters_fixed_and_broken(panel: EvaluationPanel, qtbot) -> None:
    gt, a, b = box_case()
    panel.set_evaluation({"bbox": run_evaluation(gt, a)}, split="test", label="A")
    cmp = panel.compare_with({"bbox": run_evaluation(gt, b)}, label="B")
    assert cmp is not None and cmp.status_counts()["fixed"] == 1 and cmp.status_counts()["broken"] == 1
    panel.filter_box.setCurrentIndex(panel.filter_box.findData("fixed"))
    assert panel.compare_table.rowCount() == 1 and panel.compare_table.item(0, 1).text() == "fixed"
    assert panel.compare_table.item(0, 0).text() == "0.jpg"
    panel.filter_box.setCurrentIndex(panel.filter_box.findData("broken"))
    assert panel.compare_table.rowCount() == 1 and panel.compare_table.item(0, 0).text() == "2.jpg"
    with qtbot.waitSignal(panel.imageActivated, timeout=2000) as sig:
        panel.compare_table.selectRow(0)
    assert sig.args[0] == 2 and len(sig.args[1]["false_negatives"]) == 1  # B's outcome: missed


def test_bad_file_is_shown_not_raised(panel: EvaluationPanel, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    panel._try(lambda: panel.load_file(bad))
    assert "bad.json" in panel.last_error and "Cannot use" in panel.status.text()


def test_evaluate_stored_predictions_of_project(qtbot, project) -> None:
    w = EvaluationPanel(project)
    qtbot.addWidget(w)
    w.split_box.setCurrentIndex(w.split_box.findData("train"))
    assert w.model_box.count() == 1
    with qtbot.waitSignal(w.evaluationChanged, timeout=20000):
        w.evaluate_project()
    ev = w.current()
    assert ev is not None and set(w.evaluations) == {"bbox", "segm"}
    train_ids = {r.id for r in project.images("train")}
    assert ev.n_images == len(train_ids)
    # the fake model finds every object but one per image and adds a low-score false positive
    assert ev.errors(0.5).totals.fp + ev.errors(0.5).totals.duplicates >= len(train_ids)
    with qtbot.waitSignal(w.imageActivated, timeout=2000) as sig:
        w.images_table.selectRow(0)
    assert sig.args[0] in train_ids  # the project's image id: what the canvas opens
    w.close()


def test_comparison_shows_the_verdict_and_its_operating_point(panel: EvaluationPanel) -> None:
    """Was: "AP +0.034 … Errors 11 → 33; 3 worse" with no verdict (errors counted down to 0.05)."""
    gt = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in range(12)],
        "categories": [{"id": 1, "name": "fuse"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": i,
                "category_id": 1,
                "bbox": [20, 20, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
            for i in range(12)
        ],
    }
    base = [{"image_id": i, "category_id": 1, "bbox": [120, 120, 40, 40], "score": 0.8} for i in range(12)]
    tuned = [{"image_id": i, "category_id": 1, "bbox": [20, 20, 40, 40], "score": 0.9} for i in range(12)]
    tuned += [
        {"image_id": i, "category_id": 1, "bbox": [5 * k, 150, 10, 10], "score": 0.06}
        for i in range(12)
        for k in range(5)
    ]
    panel.set_evaluation({"bbox": run_evaluation(gt, base)}, split="test", label="starting model")
    cmp = panel.compare_with({"bbox": run_evaluation(gt, tuned)}, label="fine-tuned")
    assert cmp is not None and cmp.status_counts()["fixed"] == 12 and cmp.status_counts()["worse"] == 0
    text = panel.compare_summary.text()
    assert "fine-tuned is better (ΔAP +1.000, 95% CI +1.000…+1.000, 12 images fixed, 0 broken)" in text
    assert "score &gt;= 0.90 (best F1 of fine-tuned; starting model found no object)" in text
    assert "A: starting model — B: fine-tuned" in text and "errors 12 → 0" in text


def test_images_are_ranked_by_their_errors_at_the_operating_point(panel: EvaluationPanel) -> None:
    """Each image has its object found at 0.9 and five weak false positives at 0.06: none is an
    error a reviewer sees at the best-F1 score, and the header says at which score it counts."""
    gt = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in range(4)],
        "categories": [{"id": 1, "name": "fuse"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": i,
                "category_id": 1,
                "bbox": [20, 20, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
            for i in range(4)
        ],
    }
    found = [{"image_id": i, "category_id": 1, "bbox": [20, 20, 40, 40], "score": 0.9} for i in range(4)]
    weak = [
        {"image_id": i, "category_id": 1, "bbox": [5 * k, 150, 10, 10], "score": 0.06}
        for i in range(4)
        for k in range(5)
    ]
    panel.set_evaluation({"bbox": run_evaluation(gt, found + weak)}, split="test")
    assert panel.images_table.horizontalHeaderItem(1).text() == "errors at ≥ 0.90"
    assert [panel.images_table.item(r, 1).text() for r in range(4)] == ["0"] * 4
