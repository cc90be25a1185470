"""Keys act on the highlighted item only, and what the canvas shows is what export writes.

Driven with key presses on the real window (offscreen here; the real-window test runs the same
keys through xcb), then checked in the exported COCO loaded with pycocotools.
"""

from __future__ import annotations

import numpy as np
import pytest
from gui_samples import open_window, store_fake_predictions
from pycocotools.coco import COCO
from PySide6.QtCore import Qt

from fusereview.core.coco import load_dataset
from fusereview.core.geometry import mask_to_rle, rle_to_mask, segmentation_to_rle
from fusereview.core.project import Project
from fusereview.core.records import Detection, ReviewState


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.view, key, modifier)


def _message(window) -> str:
    return window.statusBar().currentMessage()


def _tab_to_gt(qtbot, window) -> int:
    c = window.controller
    for _ in range(len(c.ctx.overlays) + 1):
        _key(qtbot, window, Qt.Key.Key_Tab)
        if c.selected is not None and c.selected[0] == "gt":
            return c.selected[1]
    raise AssertionError("Tab never reached a ground-truth annotation")


def test_a_and_r_on_a_label_do_nothing_and_say_so(qtbot, window, project) -> None:
    """Scenario 5: after Tab landed on a label, A accepted another prediction and R deleted the label."""
    c = window.controller
    before_preds = [(p.id, p.state) for p in project.predictions()]
    before_text = project.coco_text()
    ann_id = _tab_to_gt(qtbot, window)
    _key(qtbot, window, Qt.Key.Key_A)
    assert [(p.id, p.state) for p in project.predictions()] == before_preds
    assert f"annotation {ann_id} is a label" in _message(window)
    _key(qtbot, window, Qt.Key.Key_R)
    assert project.coco_text() == before_text, "R must never delete ground truth"
    assert "nothing changed" in _message(window)
    assert c.selected == ("gt", ann_id) and c.stack.count() == 0
    # Delete deletes it, says so, and Ctrl+Z brings it back
    _key(qtbot, window, Qt.Key.Key_Delete)
    assert ann_id not in {a.id for a in project.annotations()}
    assert _message(window) == f"deleted annotation {ann_id} — Ctrl+Z to undo"
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.coco_text() == before_text


def test_nothing_selected_means_nothing_decided(qtbot, window, project) -> None:
    c = window.controller
    c.select(None)
    before = [(p.id, p.state) for p in project.predictions()]
    _key(qtbot, window, Qt.Key.Key_A)
    _key(qtbot, window, Qt.Key.Key_R)
    assert [(p.id, p.state) for p in project.predictions()] == before
    assert "nothing selected" in _message(window)


def test_every_decision_names_what_it_did(qtbot, window, project) -> None:
    c = window.controller
    pid = c.selected[1]
    _key(qtbot, window, Qt.Key.Key_A)
    ann_id = project.prediction(pid).annotation_id
    assert _message(window).startswith(f"accepted prediction {pid} as annotation {ann_id}")
    pid2 = c.selected[1]
    _key(qtbot, window, Qt.Key.Key_R)
    assert _message(window).startswith(f"rejected prediction {pid2}")
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _message(window) == f"undone: reject prediction {pid2}"


def test_the_accepted_instance_is_exactly_what_was_shown(qtbot, window, project, tmp_path) -> None:
    c = window.controller
    pid = c.selected[1]
    shown = window.scene.overlay(("pred", pid))
    shown_mask = rle_to_mask(shown.mask) if shown.mask is not None else None
    _key(qtbot, window, Qt.Key.Key_A)
    (out,) = project.export_coco(tmp_path / "all.json")
    coco = COCO(str(out))
    (exported,) = [
        a for a in coco.dataset["annotations"] if a.get("fusereview", {}).get("prediction_id") == pid
    ]
    x0, y0, x1, y1 = shown.box
    assert exported["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
    if shown_mask is None:
        assert exported["segmentation"] == [] and exported["area"] == pytest.approx((x1 - x0) * (y1 - y0))
    else:
        assert np.array_equal(coco.annToMask(exported).astype(bool), shown_mask)
        assert exported["area"] == shown_mask.sum()


@pytest.fixture
def labelled(tmp_path, dataset) -> Project:
    """A project whose predictions repeat its labels (and one false positive per image)."""
    p = Project.create(tmp_path / "labelled", load_dataset(dataset))
    store_fake_predictions(p, labelled=True)
    yield p
    p.close()


def test_a_prediction_of_a_labelled_object_is_shown_as_such_and_agreed(qtbot, labelled, settings) -> None:
    """Scenario 6: accepting a prediction of a labelled object added a second annotation of it."""
    w = open_window(qtbot, labelled, settings)
    c = w.controller
    matched = [p for p in labelled.predictions() if p.matched]
    assert matched, "the fixture's predictions repeat labels"
    # the default queue holds only what needs a decision; the count says what it hides
    assert {c.queue_model.item(r).prediction_id for r in range(c.queue_model.rowCount())}.isdisjoint(
        {p.id for p in matched}
    )
    panel = w.review.queue_holder.currentWidget()
    assert (
        f"{len(matched)} hidden" in panel.count.text() and "match an existing label" in panel.count.toolTip()
    )
    panel.match.setCurrentIndex(panel.match.findData(True))
    assert c.queue_model.rowCount() == len(matched)
    c.go_to_row(0)
    pid = c.selected[1]
    pred = labelled.prediction(pid)
    overlay = w.scene.overlay(("pred", pid))
    assert f"#{pred.match_annotation_id}" in overlay.note
    assert c.queue_model.index(0, 3).data() == f"#{pred.match_annotation_id}"
    before = labelled.coco_text()
    qtbot.keyClick(w.view, Qt.Key.Key_A)
    assert labelled.coco_text() == before, "agreement adds no annotation"
    assert "recorded agreement" in w.statusBar().currentMessage()
    assert labelled.prediction(pid).agrees_with == pred.match_annotation_id
    # the agreed prediction is not drawn over its label; the label says it was agreed
    c.open_image(pred.image_id)
    assert w.scene.overlay(("pred", pid)) is None
    assert "agreed" in w.scene.overlay(("gt", pred.match_annotation_id)).note
    qtbot.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labelled.prediction(pid).state is ReviewState.PENDING
    w.close()


def test_t_takes_the_predictions_geometry_for_the_label(qtbot, labelled, settings, tmp_path) -> None:
    c_project = labelled
    w = open_window(qtbot, c_project, settings)
    c = w.controller
    c.set_queue_filter(matched=True)
    c.go_to_row(0)
    pid = c.selected[1]
    pred = c_project.prediction(pid)
    label_before = c_project.annotation(pred.match_annotation_id)
    text_before = c_project.coco_text()
    qtbot.keyClick(w.view, Qt.Key.Key_T)
    label = c_project.annotation(pred.match_annotation_id)
    assert np.array_equal(
        rle_to_mask(segmentation_to_rle(label.segmentation, *pred.mask["size"])), rle_to_mask(pred.mask)
    )
    assert label.id == label_before.id and len(c_project.annotations()) == len(c_project.annotations())
    assert "now has prediction" in w.statusBar().currentMessage()
    qtbot.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert c_project.coco_text() == text_before, "undo gives the label back byte for byte"
    w.close()


class _FakeRefine:
    fingerprint = "fake-refine"
    device = "cpu"

    def __init__(self, mask: np.ndarray | None) -> None:
        self.mask = mask

    def predict_box(self, image, box, category_id, *, threshold=0.0):
        """SAM3's answer to a box prompt: a mask (or an empty one) and the box SAM3 puts around it."""
        x0, y0, x1, y1 = box
        if self.mask is None:
            empty = np.zeros(image.shape[:2], bool)
            return [Detection((x0, y0, x1, y1), 0.9, mask_to_rle(empty), category_id)]
        inside = self.mask.copy()
        inside[:, : int(x0)] = inside[:, int(x1) :] = False
        inside[: int(y0)] = inside[int(y1) :] = False
        ys, xs = np.nonzero(inside)
        found = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        return [Detection(found, 0.9, mask_to_rle(self.mask), category_id)]


def test_refine_that_finds_nothing_says_so_and_changes_nothing(qtbot, window, project) -> None:
    """Scenario 4: Refine over an empty region stored an all-zero mask with no message."""
    c = window.controller
    pid = c.selected[1]
    window.predictor = _FakeRefine(None)
    before = project.coco_text()
    job = window._refine(c.image_id, (100.0, 100.0, 140.0, 140.0), 1, ("pred", pid))
    qtbot.waitUntil(lambda: not window.runner.jobs, timeout=10_000)
    qtbot.wait(50)
    assert job is not None
    assert project.coco_text() == before and project.prediction(pid).state is ReviewState.PENDING
    assert "found no object with a mask" in _message(window) and "nothing changed" in _message(window)
    # a mask inside the box replaces the selected prediction's (cut to the drawn box)
    img = project.image(c.image_id)
    m = np.zeros((img.height, img.width), bool)
    m[105:135, 102:130] = True
    m[0:5, 0:5] = True  # outside the drawn box: never kept
    window.predictor = _FakeRefine(m)
    window._refine(c.image_id, (100.0, 100.0, 140.0, 140.0), 1, ("pred", pid))
    qtbot.waitUntil(lambda: project.prediction(pid).state is ReviewState.EDITED, timeout=10_000)
    ann = project.annotation(project.prediction(pid).annotation_id)
    assert ann.bbox == (102.0, 105.0, 28.0, 30.0) and ann.area == 28 * 30


def test_o_makes_the_selected_item_box_only(qtbot, window, project) -> None:
    c = window.controller
    pid = c.selected[1]
    box = window.scene.overlay(c.selected).box
    _key(qtbot, window, Qt.Key.Key_O)
    ann = project.annotation(project.prediction(pid).annotation_id)
    assert ann.segmentation == [] and ann.bbox == pytest.approx(
        (box[0], box[1], box[2] - box[0], box[3] - box[1])
    )
    assert "box only" in window.scene.overlay(("pred", pid)).note


def test_the_queue_keeps_the_selected_item_highlighted_when_its_rows_change(qtbot, window, project) -> None:
    """Regression: a prediction chunk arriving (a queue reset) left the selected prediction's row
    unhighlighted, so the queue no longer showed what A and R act on."""
    c = window.controller
    from fusereview.qt.panels.review import ReviewPanel

    table = window.findChild(ReviewPanel).table
    _key(qtbot, window, Qt.Key.Key_Space)  # the next pending prediction, as a reviewer moves on
    key = c.selected
    assert key is not None and key[0] == "pred"

    def highlighted() -> list[int]:
        return [c.queue_model.item(i.row()).prediction_id for i in table.selectionModel().selectedRows()]

    assert highlighted() == [key[1]]
    c.queue_model.refresh()  # what a new chunk of predictions or another process's write does
    assert c.selected == key and highlighted() == [key[1]]
