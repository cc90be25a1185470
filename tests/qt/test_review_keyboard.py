"""A whole review by keyboard only, then the exported COCO is checked."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from fusereview.core.records import ReviewState


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.view, key, modifier)


def test_keyboard_review_and_export(qtbot, window, project) -> None:
    c = window.controller
    total = c.queue_model.rowCount()
    assert total == 15
    first = c.selected
    assert first is not None and first[0] == "pred"
    # navigation: N / Space go forward, P back
    _key(qtbot, window, Qt.Key.Key_N)
    assert c.selected != first
    _key(qtbot, window, Qt.Key.Key_P)
    assert c.selected == first
    _key(qtbot, window, Qt.Key.Key_Space)
    assert c.selected != first
    _key(qtbot, window, Qt.Key.Key_P)
    assert c.selected == first

    expected: dict[int, ReviewState] = {}
    presses = 0
    while c.queue_model.rowCount():
        key = c.selected
        assert key is not None and key[0] == "pred", "a pending prediction is always selected"
        score = project.prediction(key[1]).score
        accept = score >= 0.33
        _key(qtbot, window, Qt.Key.Key_A if accept else Qt.Key.Key_R)
        expected[key[1]] = ReviewState.ACCEPTED if accept else ReviewState.REJECTED
        presses += 1
        assert presses <= total, "one keystroke per prediction"
    assert presses == total
    assert window.isWindowModified()
    for pid, state in expected.items():
        assert project.prediction(pid).state == state

    _key(qtbot, window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not window.isWindowModified()
    files = sorted((project.root / "exports" / "coco").glob("*/_annotations.coco.json"))
    assert [f.parent.name for f in files] == sorted(project.splits())
    accepted = {pid for pid, s in expected.items() if s is ReviewState.ACCEPTED}
    exported_from_review = set()
    gt = 0
    for f in files:
        data = json.loads(f.read_text())
        for ann in data["annotations"]:
            info = (ann.get("extra") or {}).get("fusereview") or ann.get("fusereview")
            if info:
                exported_from_review.add(info["prediction_id"])
            else:
                gt += 1
    assert exported_from_review == accepted
    assert gt == len(project.annotations()) - len(accepted)


def test_macros_and_category_keys(qtbot, window, project) -> None:
    c = window.controller
    image_id = c.image_id
    pending = project.predictions(image_id=image_id, states=[ReviewState.PENDING])
    c.set_threshold(0.33)
    _key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    _key(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    states = {p.id: project.prediction(p.id).state for p in pending}
    for p in pending:
        assert states[p.id] == (ReviewState.ACCEPTED if p.score >= 0.33 else ReviewState.REJECTED)
    # one undo step per macro
    _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert all(
        project.prediction(p.id).state == (ReviewState.ACCEPTED if p.score >= 0.33 else ReviewState.PENDING)
        for p in pending
    )
    # category key on a pending prediction: it becomes an edited annotation of category 2
    c.go_to_row(0)
    pid = c.selected[1]
    second = project.categories()[1]
    _key(qtbot, window, Qt.Key.Key_2)
    pred = project.prediction(pid)
    assert pred.state == ReviewState.EDITED
    assert project.annotation(pred.annotation_id).category_id == second.id


def test_tab_cycles_items_and_help_lists_shortcuts(qtbot, window) -> None:
    c = window.controller
    seen = set()
    for _ in range(len(c.ctx.overlays)):
        _key(qtbot, window, Qt.Key.Key_Tab)
        seen.add(c.selected)
    assert seen == {o.key for o in c.ctx.overlays}
    dialog = window.show_shortcuts()
    assert "Ctrl+Shift+Z" in dialog.findChild(type(window.model_label)).text()
    dialog.close()


def test_image_list_filter_and_counts_follow_the_core(qtbot, window, project) -> None:
    from fusereview.qt.models.image_list import CountsRole

    c = window.controller
    proxy = window.review.image_proxy
    n = proxy.rowCount()
    assert n == len(project.images())
    name = project.images()[1].file_name
    qtbot.keyClicks(window.review.image_filter, name[:12])
    assert window.review.image_filter.text() == name[:12], (
        "typing in the filter box must not trigger shortcuts"
    )
    assert 1 <= proxy.rowCount() < n
    window.review.image_filter.clear()
    assert proxy.rowCount() == n
    row = c.image_model.row_of(c.image_id)
    before = c.image_model.index(row).data(CountsRole)
    c.accept()
    after = c.image_model.index(row).data(CountsRole)
    assert after.get("accepted", 0) == before.get("accepted", 0) + 1
    assert after.get("pending", 0) == before.get("pending", 0) - 1


def test_queue_filters_and_orders(qtbot, window, project) -> None:
    c = window.controller
    panel = window.review.queue_holder.currentWidget()
    scores = [c.queue_model.item(r).score for r in range(c.queue_model.rowCount())]
    assert scores == sorted(scores)
    panel.order.setCurrentIndex(panel.order.findData("score_desc"))
    scores = [c.queue_model.item(r).score for r in range(c.queue_model.rowCount())]
    assert scores == sorted(scores, reverse=True)
    panel.score_min.setValue(0.5)
    assert all(c.queue_model.item(r).score >= 0.5 for r in range(c.queue_model.rowCount()))
    split = project.splits()[0]
    panel.split.setCurrentIndex(panel.split.findData(split))
    ids = {img.id for img in project.images(split)}
    assert all(c.queue_model.item(r).image_id in ids for r in range(c.queue_model.rowCount()))
    # the selection follows the queue's first row
    if c.queue_model.rowCount():
        assert c.selected == ("pred", c.queue_model.item(0).prediction_id)


def test_layout_is_remembered(qtbot, project, settings) -> None:
    from fusereview.core.project import Project
    from fusereview.qt.main_window import MainWindow

    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(780, 560)  # inside the offscreen screen (800x600): restoreGeometry clamps to the screen
    w.show()
    w.open_project(project)
    w.review.splitter.setSizes([150, 300, 330])
    sizes = w.review.splitter.sizes()
    w.close()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    again.show()
    again.open_project(Project.open(project.root))  # the first window closed its project
    assert again.size().width() == 780 and again.size().height() == 560
    assert again.review.splitter.sizes() == sizes
    again.close()


def test_prompt_edit_saves_and_repredicts(qtbot, window, project) -> None:
    from PySide6.QtWidgets import QTableWidgetItem
    from test_workers import SlowPredictor

    panel = window.review.prompts_holder.currentWidget()
    fake = SlowPredictor(0.01)
    window.predictor = fake
    cat = project.categories()[0]
    panel.table.setItem(0, 1, QTableWidgetItem("neutral link"))
    assert {c.id: c.prompt for c in project.categories()}[cat.id] == "neutral link"
    assert window.predict_job is not None, "changing a prompt re-predicts in the background"
    qtbot.waitUntil(lambda: window.predict_job is None, timeout=20_000)
    prompts = {p.prompt for p in project.predictions(model=fake.fingerprint)}
    assert "neutral link" in prompts
