"""The desktop application around the canvas: workspaces that fit a laptop, menus, honest state, closing."""

from __future__ import annotations

import time

import pytest
from gui_samples import open_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractScrollArea, QLabel, QMenu
from test_workers import SlowPredictor

LAPTOP = (1366, 768)


def _process(qtbot, ms: int = 100) -> None:
    qtbot.wait(ms)


def test_every_workspace_fits_a_laptop_screen_and_the_window_never_grows(qtbot, project, settings) -> None:
    w = open_window(qtbot, project, settings, size=LAPTOP)
    for name in ("review", "train", "evaluate", "review"):
        w.show_workspace(name)
        _process(qtbot, 200)
        assert (w.width(), w.height()) == LAPTOP, f"{name}: the window grew to {w.width()}x{w.height()}"
        assert w.minimumSizeHint().width() <= LAPTOP[0], f"{name} needs {w.minimumSizeHint().width()} px"
        page = w.stack.currentWidget()
        for area in page.findChildren(QAbstractScrollArea):
            if area.isVisible() and area.objectName() != "canvas":  # the canvas pans, by design
                bar = area.horizontalScrollBar()
                assert not (bar.isVisible() and bar.maximum() > 0), (
                    f"{name}: {area.objectName()} scrolls sideways"
                )
    # the queue is not squashed: at least a dozen rows on screen
    table = w.review.queue_holder.currentWidget().table
    assert table.viewport().height() // table.verticalHeader().defaultSectionSize() >= 12


def test_ctrl_1_2_3_switch_workspaces_and_review_keys_act_only_in_review(qtbot, window, project) -> None:
    before = [(p.id, p.state) for p in project.predictions()]
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace == "train" and window.stack.currentWidget() is window.train
    qtbot.keyClick(window, Qt.Key.Key_A)  # in Train: must not accept a prediction nobody sees
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert [(p.id, p.state) for p in project.predictions()] == before
    assert not window.review.toolbar.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace == "evaluate"
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace == "review" and window.review.toolbar.isVisible()
    qtbot.keyClick(window.view, Qt.Key.Key_A)
    assert [(p.id, p.state) for p in project.predictions()] != before


def _menu(window, title: str) -> list[str]:
    for act in window.menuBar().actions():
        if act.text().replace("&", "") == title:
            menu = act.menu()
            assert isinstance(menu, QMenu)
            return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
    raise AssertionError(f"no {title} menu")


def test_menus_a_desktop_user_expects(qtbot, window) -> None:
    assert {"Open dataset or project…", "Open Recent", "Export COCO", "Export as…", "Quit"} <= set(
        _menu(window, "File")
    )
    assert {"Undo", "Redo", "Preferences…"} <= set(_menu(window, "Edit"))
    assert {"Review", "Train", "Evaluate", "Fit"} <= set(_menu(window, "View"))
    assert {"Keyboard shortcuts", "About fusereview"} <= set(_menu(window, "Help"))
    about = window.show_about()
    assert about.version_labels["fusereview"].text() not in ("", "not installed")
    assert about.version_labels["Qt"].text()
    about.close()


def test_the_shortcut_sheet_is_one_window_that_question_mark_and_esc_toggle(qtbot, window) -> None:
    sheet = window.show_shortcuts()
    assert sheet.isVisible() and "Ctrl+Shift+Z" in sheet.label.text()
    assert window.show_shortcuts() is sheet and not sheet.isVisible(), "? again hides the same sheet"
    window.show_shortcuts()
    qtbot.keyClick(sheet, Qt.Key.Key_Escape)
    assert not sheet.isVisible()


def test_export_as_writes_where_asked(qtbot, window, project, tmp_path) -> None:
    from pycocotools.coco import COCO

    written = window.export_as(str(tmp_path / "mine.json"))
    assert written == [tmp_path / "mine.json"]
    COCO(str(written[0]))


def test_preferences_set_the_reviewer_and_the_prediction_threshold(qtbot, window, project) -> None:
    dialog = window.show_preferences()
    dialog.reviewer.setText("ana")
    dialog.threshold.setValue(0.45)
    dialog.save()
    assert window.reviewer_name() == "ana" and window.predict_threshold() == pytest.approx(0.45)
    pid = window.controller.selected[1]
    qtbot.keyClick(window.view, Qt.Key.Key_A)
    assert project.prediction(pid).decided_by == "ana"


def test_start_page_shows_no_developer_messages(qtbot, settings) -> None:
    from fusereview.qt.main_window import MainWindow

    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    texts = " ".join(label.text() for label in w.findChildren(QLabel))
    assert "not installed" not in texts and "panel" not in texts.lower()
    assert w.workspace is None and w.stack.currentWidget() is w.start_page
    w.close()


def test_a_project_opens_with_its_active_model(qtbot, project, settings) -> None:
    project.set_active_model("tiny", "tiny:0:x", {"AP": 0.1})
    w = open_window(qtbot, project, settings)
    assert w.model_spec == "tiny", "opening without --model must use the project's active model"
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=60_000)
    w.close()


class _Blind(SlowPredictor):
    fingerprint = "blind:1"

    def predict(self, images, prompts, *, threshold: float = 0.3):
        super().predict(images, prompts, threshold=threshold)
        return [[] for _ in images]


def test_a_model_that_finds_nothing_says_so(qtbot, window, project) -> None:
    window.predictor = _Blind(0.0)
    window.predict_all([project.images()[0].id])
    qtbot.waitUntil(lambda: window.predict_job is None, timeout=20_000)
    assert window.statusBar().currentMessage().startswith("0 detections above 0.30 — lower the threshold")


def test_closing_during_prediction_takes_under_a_second(qtbot, project, settings) -> None:
    w = open_window(qtbot, project, settings)
    w.predictor = SlowPredictor(2.0)  # a batch of two seconds: a wait for it would show
    job = w.predict_all()
    assert job is not None
    qtbot.waitUntil(lambda: bool(w.runner.jobs), timeout=5_000)
    qtbot.wait(300)
    started = time.monotonic()
    w.close()
    assert w.closed_in_s is not None and w.closed_in_s < 1.0, f"the window stayed {w.closed_in_s:.2f} s"
    assert not w.isVisible()
    assert time.monotonic() - started < 10, "the prediction job did not stop at its next check"


def test_closing_during_training_is_quick_and_the_run_can_be_resumed(qtbot, project, settings) -> None:
    pytest.importorskip("pyqtgraph")
    w = open_window(qtbot, project, settings)
    w.model_spec = "tiny"
    w.show_workspace("train")
    panel = w.training_panel
    panel.overrides = {"image_size": 112, "epochs": 50, "batch_size": 2, "eval_every": 50}
    panel.preset.setCurrentText("tiny")
    panel.retrain_btn.click()
    qtbot.waitUntil(lambda: panel.plots.points("loss") >= 2, timeout=120_000)
    run = panel.current_run
    w.close()
    assert w.closed_in_s is not None and w.closed_in_s < 1.0, f"the window stayed {w.closed_in_s:.2f} s"
    assert (run / "checkpoints" / "last" / "trainer_state.pt").is_file(), "a stopped run must be resumable"


def test_building_a_workspace_shows_the_wait_cursor(qtbot, window, monkeypatch) -> None:
    """The first switch to Train builds its plots (about half a second): the cursor says so."""
    from PySide6.QtGui import QGuiApplication

    from fusereview.qt.workspaces.runs import TrainWorkspace

    seen = []
    build = TrainWorkspace.build

    def watched(self, project):
        cursor = QGuiApplication.overrideCursor()
        seen.append(None if cursor is None else cursor.shape())
        return build(self, project)

    monkeypatch.setattr(TrainWorkspace, "build", watched)
    window.show_workspace("train")
    assert seen == [Qt.CursorShape.WaitCursor]
    assert QGuiApplication.overrideCursor() is None  # restored once built
