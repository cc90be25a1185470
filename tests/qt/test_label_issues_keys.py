"""The "Label issues" queue by keyboard only: each planted error shown, fixed by its key, undone, exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_samples import open_window
from label_issue_samples import planted_project
from pycocotools.coco import COCO
from PySide6.QtCore import Qt

from fusereview.core.geometry import box_iou
from fusereview.core.project import Project
from fusereview.core.records import ReviewState
from fusereview.qt.canvas.render import LABEL_HEIGHT_PX, layout_labels
from fusereview.qt.label_issues import LABEL_COLOUR, PREDICTION_COLOUR
from fusereview.qt.main_window import SHORTCUTS


@pytest.fixture
def planted(tmp_path: Path):
    project, where = planted_project(tmp_path)
    yield project, where
    project.close()


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.view, key, modifier)


def _outlines(window) -> dict[str, tuple[float, float, float, float]]:
    """The dashed outlines on the canvas, by colour: (x0, y0, x1, y1)."""
    out = {}
    for item in window.scene.error_items:
        r = item.rect()
        out[item.pen().color().name()] = (r.x(), r.y(), r.x() + r.width(), r.y() + r.height())
    return out


def _near(a, b) -> bool:
    return box_iou(np.array([a]), np.array([b]))[0, 0] > 0.99


def test_every_planted_error_is_fixed_by_its_key_and_exported(qtbot, planted, settings) -> None:
    project, where = planted
    window = open_window(qtbot, project, settings)
    c = window.controller
    issues = c.label_issues
    _key(qtbot, window, Qt.Key.Key_L)  # the review queue's label-issues mode
    assert window.review.queue_modes.mode.currentIndex() == 1 and issues.active
    assert issues.model.rowCount() == 4, [i.kind for i in issues.model.issues]
    keys = {
        "spurious": Qt.Key.Key_U,
        "missing": Qt.Key.Key_I,
        "misplaced": Qt.Key.Key_M,
        "wrong_class": Qt.Key.Key_Y,
    }
    fixed: dict[str, object] = {}
    while issues.model.rowCount():
        issue = issues.current()
        # the canvas shows the issue's image, its label selected, label and prediction outlined
        assert c.image_id == issue.image_id == where.image_id and c.selected == issue.key
        marks = _outlines(window)
        if issue.label_box is not None:
            assert _near(marks[LABEL_COLOUR], issue.label_box)
        if issue.prediction_box is not None:
            assert _near(marks[PREDICTION_COLOUR], issue.prediction_box)
        assert set(marks) == {LABEL_COLOUR} if issue.kind == "spurious" else len(marks) >= 1
        # their texts are laid out with the tags: shown, at screen size (a 256 px photo is shown at
        # 300 %: they were huge), and never on another text (they ran over the prediction's tag)
        px = 1.0 / window.view.zoom
        marks = window.scene.overlay_item.marks
        tags = layout_labels(window.scene.ctx, px, marks)
        assert {t.text for t in tags} >= {m[2] for m in marks if m[2]}
        assert all(t.rect.height() == pytest.approx(LABEL_HEIGHT_PX * px) for t in tags)
        for i, a in enumerate(tags):
            assert not any(a.rect.intersects(b.rect) for b in tags[i + 1 :]), (a.text, tags)
        # a key that does not fix this kind changes nothing and says why
        wrong = {"spurious": Qt.Key.Key_I, "missing": Qt.Key.Key_U, "misplaced": Qt.Key.Key_Y}.get(
            issue.kind, Qt.Key.Key_M
        )
        before = project.to_coco_dict("train")
        _key(qtbot, window, wrong)
        assert project.to_coco_dict("train") == before and issues.current() == issue
        _key(qtbot, window, keys[issue.kind])
        fixed[issue.kind] = issue
        assert len(fixed) <= 4, "one key per issue"
    assert set(fixed) == set(keys)
    assert len(project.label_checks()) == 4 and window.isWindowModified()
    # undo and redo the last fix: its issue comes back and is shown, then goes again
    last = list(fixed.values())[-1]
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert issues.model.rowCount() == 1
    assert issues.current().key == last.key and c.selected == last.key
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert issues.model.rowCount() == 0
    assert [ch.active for ch in project.label_checks()] == [True, True, True, False, True]

    _key(qtbot, window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    (train,) = (project.root / "exports" / "coco").glob("train/_annotations.coco.json")
    coco = COCO(str(train))
    image = next(
        i for i in coco.dataset["images"] if i["file_name"] == project.image(where.image_id).file_name
    )
    exported = [a for a in coco.dataset["annotations"] if a["image_id"] == image["id"]]
    boxes = np.array(
        [
            [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
            for a in exported
        ]
    )
    # the dropped object is labelled, the moved label sits on its object, no box on nothing
    assert box_iou(np.array([where.missing_box]), boxes).max() > 0.8
    assert box_iou(np.array([where.misplaced_truth]), boxes).max() > 0.8
    spurious = fixed["spurious"].label_box
    assert box_iou(np.array([spurious]), boxes).max() < 0.1
    coco_of = dict(project.db.read("SELECT id, coco_id FROM annotations"))
    assert {a["id"]: a["category_id"] for a in exported}[coco_of[where.wrong_class]] == 1
    assert len(exported) == len(where.true_boxes[where.image_id])
    window.close()


def test_label_is_right_by_key_is_remembered_and_undoable(qtbot, planted, settings) -> None:
    project, where = planted
    window = open_window(qtbot, project, settings)
    c = window.controller
    issues = c.label_issues
    _key(qtbot, window, Qt.Key.Key_L)
    # N / P walk the queue
    first = issues.current()
    _key(qtbot, window, Qt.Key.Key_N)
    assert issues.row == 1 and c.selected == issues.current().key != first.key
    _key(qtbot, window, Qt.Key.Key_P)
    assert issues.row == 0 and c.selected == first.key
    _key(qtbot, window, Qt.Key.Key_N)
    misplaced = next(i for i in issues.model.issues if i.kind == "misplaced")
    issues.go_to_row(issues.model.row_of(misplaced.key))
    _key(qtbot, window, Qt.Key.Key_K)
    assert project.prediction(misplaced.prediction_id).state is ReviewState.REJECTED
    assert issues.model.row_of(misplaced.key) is None and issues.model.rowCount() == 3
    (check,) = project.label_checks()
    assert (check.kind, check.action, check.annotation_id) == ("misplaced", "right", where.misplaced)
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.prediction(misplaced.prediction_id).state is ReviewState.PENDING
    assert issues.current().key == misplaced.key and not project.label_checks()[0].active
    _key(qtbot, window, Qt.Key.Key_K)
    window.close()  # closes the project
    # remembered: a new window on the project does not show it
    again = Project.open(project.root)
    window = open_window(qtbot, again, settings)
    _key(qtbot, window, Qt.Key.Key_L)
    assert window.controller.label_issues.model.row_of(misplaced.key) is None
    assert window.controller.label_issues.model.hidden == 1
    # back to the pending predictions: N walks those again
    _key(qtbot, window, Qt.Key.Key_L)
    assert window.controller.queue_mode is None and not window.scene.error_items
    _key(qtbot, window, Qt.Key.Key_N)
    assert window.controller.selected is not None and window.controller.selected[0] == "pred"
    window.close()


def test_shift_l_shows_one_kind_at_a_time_and_its_key_fixes_it(qtbot, planted, settings) -> None:
    """Shift+L opens the queue, then walks its kinds; the panel's box and count follow; a fix works there."""
    project, where = planted
    window = open_window(qtbot, project, settings)
    issues = window.controller.label_issues
    panel = window.review.queue_modes.holder.widget(1)
    shift = Qt.KeyboardModifier.ShiftModifier
    _key(qtbot, window, Qt.Key.Key_L, shift)  # not shown yet: shows the queue (every kind)
    assert issues.active and issues.model.kind is None and issues.model.rowCount() == 4
    seen = []
    for kind in ("missing", "spurious", "misplaced", "wrong_class"):
        _key(qtbot, window, Qt.Key.Key_L, shift)
        assert issues.model.kind == kind and panel.kind_box.currentData() == kind
        assert {i.kind for i in issues.model.issues} == {kind}
        assert panel.count.text().startswith(f"{issues.model.rowCount()} ")
        first = issues.current()
        assert window.controller.selected == first.key  # shown on the canvas, selected
        short = kind.replace("_", " ")
        assert window.statusBar().currentMessage().startswith(f"{short} only · 1/")
        seen.append(first.key)
    assert len(set(seen)) == 4, "each kind's queue starts with its planted error"
    # in the wrong-class queue, Y gives the label the prediction's class, and it leaves the queue
    assert issues.current().annotation_id == where.wrong_class
    _key(qtbot, window, Qt.Key.Key_Y)
    assert {i.annotation_id for i in issues.model.issues}.isdisjoint({where.wrong_class})
    assert project.annotation(where.wrong_class).category_id == 1
    _key(qtbot, window, Qt.Key.Key_L, shift)  # round again: every kind, the three left
    assert issues.model.kind is None and panel.kind_box.currentData() is None
    assert issues.model.rowCount() == 3
    # the box chooses a kind as the key does
    panel.kind_box.setCurrentIndex(2)
    panel.kind_box.activated.emit(2)
    assert issues.model.kind == "spurious" and issues.current().annotation_id == where.spurious
    window.close()


def test_shift_u_asks_the_model_about_unsupported_label_boxes(qtbot, planted, settings) -> None:
    """Shift+U: the model's interactive head, in the background, tells an overlooked label from a box on nothing."""
    from label_issue_samples import overlook_a_label

    from fusereview.demo.project import demo_model_dir
    from fusereview.models import load_model
    from fusereview.models.interactive import load_interactive

    project, where = planted
    unseen = overlook_a_label(project, where)  # a correct label nothing the model detects supports
    window = open_window(qtbot, project, settings)
    issues = window.controller.label_issues
    shift = Qt.KeyboardModifier.ShiftModifier
    _key(qtbot, window, Qt.Key.Key_L, shift)
    _key(qtbot, window, Qt.Key.Key_L, shift)
    _key(qtbot, window, Qt.Key.Key_L, shift)  # the spurious labels' queue
    assert issues.model.kind == "spurious"
    scores = {i.annotation_id: i.score for i in issues.model.issues}
    assert scores[unseen.id] == pytest.approx(scores[where.spurious])  # a tie on detections alone
    panel = window.review.queue_modes.holder.widget(1)
    # no interactive head loaded: it says why and changes nothing
    window.review.set_click_head(None, "no model loaded yet")
    assert not panel.check_button.isEnabled()
    _key(qtbot, window, Qt.Key.Key_U, shift)
    assert window.statusBar().currentMessage().startswith("cannot ask the model about label boxes")
    assert issues.box_job is None and issues.model.box_support == {}
    model = demo_model_dir()
    window.review.set_click_head(load_interactive(model, load_model(model), device="cpu"), "")
    assert panel.check_button.isEnabled()
    _key(qtbot, window, Qt.Key.Key_U, shift)
    assert issues.box_job is not None and not panel.check_button.isEnabled()
    qtbot.waitUntil(lambda: issues.box_job is None, timeout=60_000)
    support = issues.model.box_support
    assert support[unseen.id] >= 0.5 > support[where.spurious]
    assert window.statusBar().currentMessage().startswith(f"asked the model about {len(support)} label boxes")
    assert "label boxes asked about" in panel.count.text()
    # the box on nothing is first; the overlooked label fell below it
    assert issues.current().annotation_id == where.spurious
    after = {i.annotation_id: i.score for i in issues.model.issues}
    assert after.get(unseen.id, 0.0) < after[where.spurious]
    # closing the project while a check runs: it stops, and its answer finds the project gone
    _key(qtbot, window, Qt.Key.Key_U, shift)
    job = issues.box_job
    assert job is not None
    window.close()
    qtbot.waitUntil(lambda: issues.box_job is None, timeout=60_000)
    assert job.stop_requested


def test_the_fix_keys_clash_with_no_other_shortcut() -> None:
    keys = [k.strip() for entry, _ in SHORTCUTS for k in entry.replace(",", "/").split("/")]
    singles = [k for k in keys if len(k) == 1]
    assert len(singles) == len(set(singles)), sorted(singles)
    for key in ("L", "I", "U", "M", "Y", "K", "C"):
        assert key in singles


def test_the_queue_follows_a_model_run(qtbot, planted, settings) -> None:
    """New predictions rescore their own image (not the whole project) and a new model is listed."""
    from label_issue_samples import MODEL

    from fusereview.core.records import Detection

    project, where = planted
    window = open_window(qtbot, project, settings)
    issues = window.controller.label_issues
    _key(qtbot, window, Qt.Key.Key_L)
    before = {i.key for i in issues.model.issues}
    other = next(i for i in project.images() if i.id != where.image_id)
    # the same model, rerun on another image: a confident detection where nothing is labelled
    (new,) = project.store_predictions(other.id, MODEL, "rerun", [Detection((0, 0, 12, 12), 0.99, None, 1)])
    keys = {i.key for i in issues.model.issues}
    assert ("pred", new.id) in keys and before <= keys
    panel = window.review.queue_modes.holder.widget(1)
    assert panel.model_box.count() == 1
    project.store_predictions(other.id, "another-model", "k", [Detection((0, 0, 12, 12), 0.9, None, 1)])
    assert panel.model_box.count() == 1  # listed on the panel's next update
    issues.go_to_row(0)
    assert panel.model_box.count() == 2 and issues.model.model == MODEL
    window.close()
