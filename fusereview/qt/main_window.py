"""The main window: image list, canvas, review queue and details, prompts, status bar.

It wires views to the :class:`~fusereview.qt.controller.ReviewController` (which holds the undo
stack and turns actions into core calls) and runs background jobs (model loading, prediction,
SAM3 refine) through a :class:`~fusereview.qt.workers.JobRunner`. Dock layout and geometry are
remembered in ``QSettings``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDialog,
    QDockWidget,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QTextEdit,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fusereview.core.errors import FusereviewError
from fusereview.core.events import Event
from fusereview.core.project import Project
from fusereview.qt.canvas.render import Key, RenderContext, overview_step
from fusereview.qt.canvas.scene import OVERVIEW_MAX_SIDE, CanvasScene, FrameCache, build_context
from fusereview.qt.canvas.tools import BoxTool, BrushTool, ClickTool, PolygonTool, SelectTool, Tool
from fusereview.qt.canvas.view import CanvasView
from fusereview.qt.controller import ReviewController
from fusereview.qt.models.image_list import ImageFilterProxy, ImageIdRole
from fusereview.qt.panels.details import DetailsPanel
from fusereview.qt.panels.prompts import PromptsPanel
from fusereview.qt.panels.review import ReviewPanel
from fusereview.qt.panels.start_page import StartPage, remember_project
from fusereview.qt.workers import JobRunner, LoadInteractiveJob, LoadModelJob, PredictJob, RefineJob

#: (keys, what they do): the ? dialog and the README list these.
SHORTCUTS: list[tuple[str, str]] = [
    (
        "A",
        "accept the selected prediction as shown (one that matches a label: record agreement, no second label)",
    ),
    ("R", "reject the selected prediction (never deletes a label)"),
    ("Delete", "delete the selected annotation (undoable); on a prediction: reject it"),
    ("T", "take the selected prediction's box and mask for the label it matches"),
    ("O", "make the selected item box only (drop its mask)"),
    ("Space / N", "next pending prediction (queue order)"),
    ("P", "previous pending prediction"),
    ("Tab", "next item on the same image"),
    ("PgDown / PgUp", "next / previous image"),
    ("1 – 9", "set the category of the selected prediction or annotation (and of objects drawn next)"),
    ("E", "edit: cycle select/handles → brush → eraser"),
    ("V / B / X", "select / brush / eraser"),
    ("D / G / S", "draw a box / draw a polygon / SAM3 refine (draw a box prompt)"),
    (
        "C",
        "click to segment (SAM3's interactive head): left click object, right click background, "
        "Enter accepts (on a selected item: its new mask), Esc discards",
    ),
    ("[ / ]", "brush smaller / larger"),
    ("Shift+A / Shift+R", "accept all above / reject all below the threshold on this image"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
    ("Ctrl+S", "export COCO"),
    ("F / 1:1 (Ctrl+0)", "fit the image / actual size"),
    ("wheel, space-drag, middle-drag", "zoom to cursor, pan"),
    ("?", "this list"),
]


PREFETCH_DELAY_MS = 60
EXTERNAL_POLL_MS = 1500  # how often the window looks for other processes' writes
_TEXT_INPUTS = (QLineEdit, QTextEdit, QAbstractSpinBox)  # where Space is a character, not "next"


def _optional_panel(module: str, name: str) -> type[QWidget] | None:
    """A panel class built by another part, or ``None`` when that part is not installed yet."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # the panel exists but something it needs is missing: that is a bug to see
        return None
    return getattr(mod, name)


class MainWindow(QMainWindow):
    """The review application window.

    Parameters
    ----------
    settings:
        Where geometry, dock layout and recent projects are remembered (tests pass a temporary one).

    Signals
    -------
    frame_shown(int):
        An image was put on the canvas (benchmarks measure key press to paint with it).
    """

    frame_shown = Signal(int)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("fusereview", "fusereview")
        self.setObjectName("main_window")
        self.setWindowTitle("fusereview[*]")
        self.resize(1400, 900)
        self.project: Project | None = None
        self.controller: ReviewController | None = None
        self.predictor: Any = None
        self.model_spec: str | None = None
        self.runner = JobRunner(self)
        # Cancel shows while any job runs (prediction, SAM3 re-segmenting, model loading)
        self.runner.busy_changed.connect(lambda busy: self.cancel_button.setVisible(busy))
        self.predict_job: PredictJob | None = None
        self._pending_predict = False
        self.cache = FrameCache()
        self.scene = CanvasScene(self.cache)
        self.view = CanvasView(self.scene)
        self.tools: dict[str, Tool] = {}
        self.training_panel: Any = None
        self.evaluation_panel: Any = None
        self._closing = False

        self.stack = QStackedWidget()
        self.start_page = StartPage(self.settings)
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)
        self.start_page.open_requested.connect(self.open_path)
        self.start_page.demo_requested.connect(self.open_demo)

        self._build_status_bar()
        self._build_docks()
        self._build_actions()
        self.scene.selection_changed.connect(self._canvas_selected)
        QApplication.instance().installEventFilter(self)  # Space: tap = next, hold = pan
        self.resizeDocks([self.images_dock, self.queue_dock], [300, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.queue_dock, self.details_dock], [560, 220], Qt.Orientation.Vertical)
        self._restore_layout()
        # Follow other processes' writes (a CLI predict on the same project): SQLite's
        # data_version is one cheap read per tick.
        self.external_timer = QTimer(self)
        self.external_timer.setInterval(EXTERNAL_POLL_MS)
        self.external_timer.timeout.connect(self.poll_external_changes)
        self.external_timer.start()

    def poll_external_changes(self) -> bool:
        """Re-read the project when another connection committed; returns whether it did.

        While our own prediction job runs, its writes arrive through its signals instead (a
        full re-read every tick would stall the window on a large queue); the job's end re-reads
        once.
        """
        if self.project is None or self.controller is None or self.predict_job is not None:
            return False
        if not self.project.poll_external_changes():
            return False
        self.controller.reload_all()
        return True

    # --- building -----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel("no model")
        self.model_label.setObjectName("status_model")
        self.device_label = QLabel("")
        self.device_label.setObjectName("status_device")
        self.job_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setObjectName("job_progress")
        self.progress.setMaximumWidth(200)
        self.progress.setVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_jobs)
        self.resegment_button = QToolButton()
        self.resegment_button.setObjectName("resegment_button")
        self.resegment_button.setText("Re-segment in the new box")
        self.resegment_button.setToolTip("SAM3 segments inside the box you just drew (in the background)")
        self.resegment_button.setVisible(False)
        self.resegment_button.clicked.connect(self.resegment)
        self._resegment: tuple[Any, Any] | None = None
        self.unsaved_label = QLabel("")
        self.unsaved_label.setObjectName("status_unsaved")
        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("status_zoom")
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"zoom {z * 100:.0f}%"))
        for w in (
            self.zoom_label,
            self.model_label,
            self.device_label,
            self.job_label,
            self.progress,
            self.resegment_button,
            self.cancel_button,
            self.unsaved_label,
        ):
            bar.addPermanentWidget(w)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right, bottom = (
            Qt.DockWidgetArea.LeftDockWidgetArea,
            Qt.DockWidgetArea.RightDockWidgetArea,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        images = QWidget()
        lay = QVBoxLayout(images)
        lay.setContentsMargins(4, 4, 4, 4)
        self.image_filter = QLineEdit()
        self.image_filter.setPlaceholderText("filter images…")
        self.image_filter.setClearButtonEnabled(True)
        self.image_list = QListView()
        self.image_list.setObjectName("image_list")
        self.image_list.setUniformItemSizes(True)
        self.image_list.setIconSize(QSize(56, 56))
        self.image_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.image_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        lay.addWidget(self.image_filter)
        # shown while the list holds only a review set sent from the evaluation panel
        self.review_set_button = QPushButton("Show all images")
        self.review_set_button.setToolTip("leave the review set sent from the evaluation")
        self.review_set_button.clicked.connect(self.clear_review_set)
        self.review_set_button.setVisible(False)
        lay.addWidget(self.review_set_button)
        lay.addWidget(self.image_list, 1)
        self.image_proxy = ImageFilterProxy()
        self.image_filter.textChanged.connect(self.image_proxy.set_text)
        self.image_list.clicked.connect(lambda index: self._open_image_from_list(index.data(ImageIdRole)))
        self.images_dock = self._dock("Images", "dock_images", images, left)

        self.queue_holder = QStackedWidget()
        self.queue_dock = self._dock("Review queue", "dock_queue", self.queue_holder, right)
        self.details_holder = QStackedWidget()
        self.details_dock = self._dock("Details", "dock_details", self.details_holder, right)
        self.prompts_holder = QStackedWidget()
        self.prompts_dock = self._dock("Prompts", "dock_prompts", self.prompts_holder, right)
        self.tabifyDockWidget(self.details_dock, self.prompts_dock)
        self.details_dock.raise_()

        # Training and evaluation panels are built by other parts; their slots exist either way.
        self.training_dock = self._dock(
            "Training", "dock_training", QLabel("training panel not installed"), bottom
        )
        self.evaluation_dock = self._dock(
            "Evaluation", "dock_evaluation", QLabel("evaluation panel not installed"), bottom
        )
        self.training_dock.hide()
        self.evaluation_dock.hide()
        for dock in (self.training_dock, self.evaluation_dock):
            dock.visibilityChanged.connect(lambda visible, d=dock: self._dock_visibility(d, visible))
        view_menu = self.menuBar().addMenu("&View")
        for dock in (
            self.images_dock,
            self.queue_dock,
            self.details_dock,
            self.prompts_dock,
            self.training_dock,
            self.evaluation_dock,
        ):
            view_menu.addAction(dock.toggleViewAction())

    def _action(
        self, text: str, keys: str | list[str] | None, slot: Any, *, checkable: bool = False
    ) -> QAction:
        act = QAction(text, self)
        if keys:
            seqs = [keys] if isinstance(keys, str) else keys
            act.setShortcuts([QKeySequence(k) for k in seqs])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _needs_review(self, fn: Any) -> Any:
        def run(*_: Any) -> None:
            if self.controller is not None:
                fn(self.controller)

        return run

    def _build_actions(self) -> None:
        r = self._needs_review
        self.actions_by_name: dict[str, QAction] = {
            "accept": self._action("Accept", "A", r(lambda c: c.accept())),
            "reject": self._action("Reject", "R", r(lambda c: c.reject())),
            "delete": self._action("Delete", "Delete", r(lambda c: c.delete())),
            "take_geometry": self._action("Take prediction's geometry", "T", r(lambda c: c.take_geometry())),
            "box_only": self._action("Box only", "O", r(lambda c: c.make_box_only())),
            "next": self._action("Next pending", "N", r(lambda c: c.next_pending())),
            "previous": self._action("Previous pending", "P", r(lambda c: c.previous_pending())),
            "next_image": self._action("Next image", "PgDown", r(lambda c: c.step_image(1))),
            "previous_image": self._action("Previous image", "PgUp", r(lambda c: c.step_image(-1))),
            "next_on_image": self._action("Next item on image", "Tab", r(lambda c: c.next_on_image())),
            "accept_above": self._action(
                "Accept all above threshold", "Shift+A", r(lambda c: c.accept_above())
            ),
            "reject_below": self._action(
                "Reject all below threshold", "Shift+R", r(lambda c: c.reject_below())
            ),
            "undo": self._action("Undo", ["Ctrl+Z"], r(lambda c: c.undo())),
            "redo": self._action("Redo", ["Ctrl+Shift+Z", "Ctrl+Y"], r(lambda c: c.redo())),
            "export": self._action("Export COCO", "Ctrl+S", self.export),
            "help": self._action("Shortcuts", ["?", "Shift+?", "F1"], self.show_shortcuts),
            "fit": self._action("Fit", "F", self.view.fit),
            "actual": self._action("1:1", "Ctrl+0", self.view.actual_size),
            "edit": self._action("Edit", "E", self._cycle_edit_tool),
            "brush_smaller": self._action("Brush smaller", "[", lambda: self._brush_step(-2)),
            "brush_larger": self._action("Brush larger", "]", lambda: self._brush_step(2)),
        }
        for n in range(1, 10):
            self._action(f"Category {n}", str(n), r(lambda c, n=n: c.set_category_number(n)))

        bar = QToolBar("Tools")
        bar.setObjectName("toolbar_tools")
        self.addToolBar(bar)
        group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for name, text, key in (
            ("select", "Select", "V"),
            ("brush", "Brush", "B"),
            ("eraser", "Eraser", "X"),
            ("box", "Box", "D"),
            ("polygon", "Polygon", "G"),
            ("refine", "Refine", "S"),
            ("click", "Click", "C"),  # issue 15: greyed out until the model's interactive head loads
        ):
            act = self._action(text, key, lambda _=False, n=name: self.set_tool(n), checkable=True)
            hint = ": draw a box, the model segments inside it" if name == "refine" else ""
            act.setToolTip(f"{text} ({key}){hint}")
            group.addAction(act)
            bar.addAction(act)
            self.tool_actions[name] = act
        self.tool_actions["select"].setChecked(True)
        self._click_head: Any = None  # issue 15: the loaded interactive head (None: Click greyed out)
        self._enable_click(None, "no model loaded yet")
        self.brush_size = QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(8)
        self.brush_size.setPrefix("brush ")
        self.brush_size.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.brush_size.valueChanged.connect(self._brush_size_changed)
        bar.addWidget(self.brush_size)
        bar = QToolBar("View")
        bar.setObjectName("toolbar_view")
        self.addToolBar(bar)
        self.layer_actions: dict[str, QAction] = {}
        for name, text in (
            ("gt", "GT"),
            ("predictions", "Predictions"),
            ("masks", "Masks"),
            ("labels", "Labels"),
        ):
            act = QAction(text, self)
            act.setCheckable(True)
            act.setChecked(True)
            act.toggled.connect(lambda on, n=name: self._layer_toggled(n, on))
            bar.addAction(act)
            self.layer_actions[name] = act
        bar.addSeparator()
        bar.addWidget(QLabel(" threshold "))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setObjectName("threshold")
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setMaximumWidth(160)
        self.threshold_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.threshold_label = QLabel("0.00")
        self.threshold_slider.valueChanged.connect(self._threshold_changed)
        bar.addWidget(self.threshold_slider)
        bar.addWidget(self.threshold_label)
        bar.addSeparator()
        bar.addAction(self.actions_by_name["fit"])
        bar.addAction(self.actions_by_name["actual"])
        bar.addAction(self.actions_by_name["undo"])
        bar.addAction(self.actions_by_name["redo"])
        bar.addAction(self.actions_by_name["export"])

    # --- settings ---------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def save_layout(self) -> None:
        """Remember geometry and dock layout."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    # --- opening ----------------------------------------------------------------------------------
    def open_path(self, path: str) -> None:
        """Open a project folder or a dataset (imported into a project beside it the first time)."""
        try:
            project = Project.open_or_import(path)
        except FusereviewError as exc:
            self.warn("Cannot open", str(exc))
            return
        self.open_project(project)

    def open_demo(self) -> None:
        """Open the demo: a synthetic dataset in the user's data folder, with the tiny model."""
        from PySide6.QtCore import QStandardPaths

        from fusereview.core.synthetic import generate_dataset

        base = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "demo"
        dataset = base / "fuse-neutrals-synthetic"
        if not dataset.exists():
            generate_dataset(dataset)
        self.open_path(str(dataset))
        if self.project is not None and self.predictor is None:
            self.load_model("tiny")

    def open_project(self, project: Project) -> None:
        """Show a project: the review workspace replaces the start page."""
        self.close_project()
        self.project = project
        c = ReviewController(project, reviewer=_reviewer_name())
        self.controller = c
        remember_project(self.settings, project.root)
        self.image_proxy.setSourceModel(c.image_model)
        self.image_list.setModel(self.image_proxy)
        review = ReviewPanel(c)
        self.queue_holder.addWidget(review)
        self.queue_holder.setCurrentWidget(review)
        details = DetailsPanel(c)
        self.details_holder.addWidget(details)
        self.details_holder.setCurrentWidget(details)
        prompts = PromptsPanel(project)
        prompts.repredict_requested.connect(self._repredict)
        self.prompts_holder.addWidget(prompts)
        self.prompts_holder.setCurrentWidget(prompts)
        self._attach_optional_panels(project)
        c.context_changed.connect(self._show_context)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        c.refine_requested.connect(self._refine)
        c.resegment_offered.connect(self._offer_resegment)
        c.stack.cleanChanged.connect(self._clean_changed)
        self._clean_changed(True)
        self.tools = {
            "select": SelectTool(self.scene, c),
            "brush": BrushTool(self.scene, c, erase=False, radius=self.brush_size.value()),
            "eraser": BrushTool(self.scene, c, erase=True, radius=self.brush_size.value()),
            "box": BoxTool(self.scene, c, refine=False),
            "polygon": PolygonTool(self.scene, c),
            "refine": BoxTool(self.scene, c, refine=True),
            "click": ClickTool(self.scene, c, self.runner),  # issue 15
        }
        self.tools["click"].set_segmenter(self._click_head, self._click_why)
        self.set_tool("select")
        self.stack.setCurrentWidget(self.view)
        self.setWindowTitle(f"{project.root.name} — fusereview[*]")
        if not c.go_to_row(0):
            images = project.images()
            if images:
                c.open_image(images[0].id)
        self.view.setFocus()
        if self.predictor is not None:
            self.predict_all()

    def _attach_optional_panels(self, project: Project) -> None:
        """Dock the training and evaluation panels (built by other parts) when they are installed.

        Each is built the first time its dock is shown: they import pyqtgraph and read every
        prediction, which would add seconds to opening a large project for nothing.
        """
        for dock in (self.training_dock, self.evaluation_dock):
            if dock.isVisible():
                self._build_optional_panel(dock)

    def _dock_visibility(self, dock: QDockWidget, visible: bool) -> None:
        if visible and self.project is not None:
            self._build_optional_panel(dock)

    def _build_optional_panel(self, dock: QDockWidget) -> None:
        project = self.project
        if project is None:
            return
        if dock is self.training_dock and self.training_panel is None:
            training_cls = _optional_panel("fusereview.qt.panels.training", "TrainingPanel")
            if training_cls is not None:
                self.training_panel = training_cls()
                self.training_panel.set_project(project.root, self.model_spec)
                self.training_panel.run_finished.connect(self._run_finished)
                dock.setWidget(self.training_panel)
        elif dock is self.evaluation_dock and self.evaluation_panel is None:
            evaluation_cls = _optional_panel("fusereview.qt.panels.evaluation", "EvaluationPanel")
            if evaluation_cls is not None:
                panel = evaluation_cls(project)
                # an image picked in the evaluation's error list opens on the canvas
                panel.imageActivated.connect(self.show_evaluated_image)
                panel.reviewRequested.connect(self.review_set)
                self.evaluation_panel = panel
                dock.setWidget(panel)

    def _detach_optional_panels(self) -> None:
        """Stop what the panels run (a destroyed running QThread aborts the process)."""
        if self.training_panel is not None:
            self.training_panel.shutdown()
            self.training_dock.setWidget(QLabel("training panel: open a project"))
            self.training_panel.deleteLater()
            self.training_panel = None
        if self.evaluation_panel is not None:
            self.evaluation_panel.close()  # its closeEvent waits for a running evaluation
            self.evaluation_dock.setWidget(QLabel("evaluation panel: open a project"))
            self.evaluation_panel.deleteLater()
            self.evaluation_panel = None

    def show_evaluated_image(self, image_id: int, overlays: dict) -> int:
        """Open an image picked in the evaluation panel, its misses and false positives outlined.

        Missed objects, false positives and duplicates are drawn dashed in the panel's colours
        (``overlays`` as ``EvaluationPanel.imageActivated`` sends it); true positives are not,
        the predictions themselves show those. Returns the number of outlines drawn.
        """
        self._open_image_from_list(image_id)
        if self.controller is None or self.controller.image_id != image_id:
            return 0
        colours = overlays.get("colors") or {}
        labels = {"false_negatives": "missed", "false_positives": "false positive", "duplicates": "duplicate"}
        marks = []
        for kind, label in labels.items():
            for o in overlays.get(kind) or []:
                score = f" {o['score']:.2f}" if o.get("score") is not None else ""
                marks.append((tuple(o["bbox"]), colours.get(kind, "#ff00ff"), label + score))
        self.scene.show_errors(marks)
        return len(marks)

    def review_set(self, false_negatives: list[dict], false_positives: list[dict]) -> list[int]:
        """Show only the images an evaluation found errors on (missed objects, weak false positives).

        The image list keeps those images (the "Show all images" button leaves the set) and the
        first one opens, with its ground truth and predictions on the canvas. Returns the ids.
        """
        if self.controller is None:
            return []
        known = {img.id for img in self.project.images()} if self.project is not None else set()
        ids = sorted({int(o["image_id"]) for o in (*false_negatives, *false_positives)} & known)
        self.image_proxy.set_ids(ids)
        self.review_set_button.setText(f"Show all images (review set: {len(ids)})")
        self.review_set_button.setVisible(True)
        self.images_dock.raise_()
        if ids:
            self._open_image_from_list(ids[0])
        self.statusBar().showMessage(
            f"review set: {len(ids)} images with {len(false_negatives)} missed objects and "
            f"{len(false_positives)} weak false positives",
            15000,
        )
        return ids

    def clear_review_set(self) -> None:
        """Show every image again."""
        self.image_proxy.set_ids(None)
        self.review_set_button.setVisible(False)

    def _run_finished(self, info: dict) -> None:
        """A training run ended: evaluate its best model against the model it started from.

        The comparison shows in the evaluation panel (test split when there is one). The run
        itself decided whether its best model became the project's active model.
        """
        self.statusBar().showMessage(f"training {info.get('status')}: {info.get('message', '')}", 15000)
        best = info.get("best_path")
        if not best or not self.model_spec or self._closing:
            return
        self.evaluation_dock.show()
        self.evaluation_dock.raise_()
        self._build_optional_panel(self.evaluation_dock)
        if self.evaluation_panel is not None:
            base = Path(self.model_spec).name if self.model_spec != "tiny" else "tiny"
            self.evaluation_panel.compare_models(
                self.model_spec, f"current model ({base})", best, f"run {Path(info['run_dir']).name}"
            )

    def close_project(self) -> None:
        """Stop jobs, forget the project (closing its database)."""
        self._detach_optional_panels()
        self.runner.stop_all()
        self.predict_job = None
        if self.controller is not None:
            self.controller.close()
            self.controller.deleteLater()
            self.controller = None
        for holder in (self.queue_holder, self.details_holder, self.prompts_holder):
            while holder.count():
                w = holder.widget(0)
                holder.removeWidget(w)
                w.deleteLater()
        self.scene.set_tool(None)
        self.tools = {}
        self.cache.clear()
        if self.project is not None:
            self.project.close()
            self.project = None

    # --- model and jobs --------------------------------------------------------------------
    def load_model(self, spec: str, device: str | None = None) -> LoadModelJob:
        """Load a model in the background; predicting starts when it is loaded."""
        self.model_spec = spec
        self.model_label.setText(f"loading {spec}…")
        job = LoadModelJob(spec, device)
        job.finished.connect(self.set_predictor)
        job.failed.connect(self._model_failed)
        self.runner.start(job)
        return job

    def _model_failed(self, message: str) -> None:
        self.model_label.setText("no model")
        self.statusBar().showMessage(f"model not loaded: {message}")
        self.warn("Model not loaded", message)

    def set_predictor(self, predictor: Any) -> None:
        """Use a loaded predictor (predicts every image that has no cached predictions)."""
        self.predictor = predictor
        name = self.model_spec or getattr(predictor, "fingerprint", "model")
        self.model_label.setText(f"model: {name}")
        self.device_label.setText(f"device: {getattr(predictor, 'device', '?')}")
        if self.training_panel is not None and self.project is not None:
            self.training_panel.set_project(self.project.root, self.model_spec)
        self._load_click_head()  # issue 15
        if self.project is not None:
            self.predict_all()

    # --- issue 15: the Click tool follows the model's interactive head ------------------------------
    def _load_click_head(self) -> LoadInteractiveJob:
        self._enable_click(None, "loading the model's interactive head…")
        job = LoadInteractiveJob(self.model_spec or "", self.predictor)
        job.finished.connect(
            lambda seg, p=self.predictor: p is self.predictor and self._enable_click(seg, "")
        )
        job.failed.connect(
            lambda why, p=self.predictor: p is self.predictor and self._enable_click(None, why)
        )
        self.runner.start(job)
        return job

    def _enable_click(self, segmenter: Any, why: str) -> None:
        self._click_head, self._click_why = segmenter, why
        act = self.tool_actions["click"]
        act.setEnabled(segmenter is not None)
        act.setToolTip(
            "Click (C): left click = object, right click = background, Enter accepts, Esc discards"
            if segmenter is not None
            else f"Click (C) unavailable: {why}"
        )
        tool = self.tools.get("click")
        if isinstance(tool, ClickTool):
            tool.set_segmenter(segmenter, why)
            if segmenter is None and self.scene.tool is tool:
                self.set_tool("select")

    def predict_all(self, image_ids: list[int] | None = None) -> PredictJob | None:
        """Predict images (all by default) in the background, the current image first."""
        if self.project is None or self.predictor is None or self._closing:
            return None
        if self.predict_job is not None:
            # one prediction job at a time: stop the running one and start again when it ends
            self.predict_job.request_stop()
            self._pending_predict = True
            return None
        ids = image_ids or [img.id for img in self.project.images()]
        current = self.controller.image_id if self.controller is not None else None
        if current in ids:
            ids.remove(current)
            ids.insert(0, current)
        job = PredictJob(self.project.root, self.predictor, ids)
        job.progress.connect(self._job_progress)
        job.chunk_done.connect(self._predictions_arrived)
        job.finished.connect(self._predict_finished)
        job.failed.connect(self._predict_failed)
        self.predict_job = job
        self.job_label.setText("predicting")
        self.progress.setRange(0, len(ids))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.runner.start(job)
        return job

    def _job_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _predictions_arrived(self, pids: tuple[int, ...]) -> None:
        if self.controller is None or not pids:
            return
        # the job wrote through its own connection: tell this project's views
        self.controller.session.events.emit(Event("predictions_added", tuple(pids)))
        if self.controller.selected is None and self.controller.queue_model.rowCount():
            self.controller.go_to_row(0)

    def _job_ended(self) -> None:
        self.predict_job = None
        if self.project is not None and self.controller is not None and not self._closing:
            # the job wrote through its own connection (pending predictions it superseded are
            # gone): one full re-read, and the poll starts from here
            self.project.poll_external_changes()
            self.controller.reload_all()
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.job_label.setText("")
        if self._pending_predict and not self._closing:
            self._pending_predict = False
            self.predict_all()

    def _predict_finished(self, counts: dict) -> None:
        self._job_ended()
        if self.evaluation_panel is not None and self.project is not None:
            self.evaluation_panel.set_project(self.project)  # the new model's predictions can be evaluated
        stopped = " (cancelled)" if counts.get("stopped") else ""
        failures = counts.get("failures") or []
        failed = f", {len(failures)} failed (first: {failures[0]})" if failures else ""
        self.statusBar().showMessage(
            f"prediction finished{stopped}: {counts.get('images', 0)} images, "
            f"{counts.get('detections', 0)} new predictions{failed}",
            8000,
        )

    def _predict_failed(self, message: str) -> None:
        self._job_ended()
        self.statusBar().showMessage(f"prediction failed: {message}")

    def cancel_jobs(self) -> None:
        """Ask running jobs to stop (the button in the status bar)."""
        self._pending_predict = False
        for job in self.runner.jobs:
            job.request_stop()

    def _repredict(self, category_ids: list[int]) -> None:
        if self.predictor is None:
            self.statusBar().showMessage("prompt saved; load a model to predict with it", 6000)
            return
        self.predict_all()

    def _refine(
        self, image_id: int, box: tuple[float, float, float, float], category_id: int, target: Any = None
    ) -> RefineJob | None:
        """Run a SAM3 box prompt in the background (cancellable); its result goes through the geometry rule."""
        self.resegment_button.setVisible(False)
        if self.predictor is None or self.project is None:
            self.statusBar().showMessage("SAM3 refine needs a loaded model: nothing changed", 6000)
            return None
        job = RefineJob(self.predictor, self.project.image_path(image_id), box, category_id)
        job.finished.connect(lambda dets, j=job, t=target, b=box: self._refined(j, image_id, dets, t, b))
        job.failed.connect(
            lambda m: self.statusBar().showMessage(f"refine failed: {m}: nothing changed", 6000)
        )
        self.statusBar().showMessage("SAM3 re-segmenting inside the box… (Cancel stops it)", 3000)
        self.runner.start(job)
        return job

    def _refined(self, job: RefineJob, image_id: int, detections: list, target: Any, box: Any) -> None:
        if job.stop_requested or self.controller is None:
            self.statusBar().showMessage("re-segmenting cancelled: nothing changed", 4000)
            return
        self.controller.apply_refine(image_id, detections, target, box)

    def _offer_resegment(self, key: Any, box: tuple[float, float, float, float]) -> None:
        """After a box edit: offer SAM3's box prompt inside the new box (when a model is loaded)."""
        self._resegment = (key, box)
        self.resegment_button.setVisible(self.predictor is not None)

    def resegment(self) -> RefineJob | None:
        """Re-segment the last edited item inside its new box (the status bar's button)."""
        if self.controller is None or self._resegment is None:
            return None
        key, box = self._resegment
        self._resegment = None
        if self.controller.image_id is None:
            return None
        cat = self.controller.new_category_id
        return self._refine(self.controller.image_id, box, cat, key)

    # --- canvas --------------------------------------------------------------------------------------
    def _show_context(self, ctx: RenderContext, image_changed: bool) -> None:
        c = self.controller
        if c is None or c.image_id is None or self.project is None:
            return
        if image_changed or self.scene.image_id != c.image_id:
            img = self.project.image(c.image_id)
            try:
                frame = self.cache.frame(img.id, self.project.image_path(img.id), (img.width, img.height))
            except FusereviewError as exc:
                self.statusBar().showMessage(str(exc))
                return
            self.scene.show_frame(frame, ctx)
            self.view.fit() if self.view._fit_mode else None
            self._sync_image_list(img.id)
            self.frame_shown.emit(img.id)
            # after this frame is painted, not before it
            QTimer.singleShot(PREFETCH_DELAY_MS, self._prefetch)
        else:
            self.scene.set_context(ctx)

    def _prefetch(self) -> None:
        c, p = self.controller, self.project
        if c is None or p is None:
            return
        for image_id in c.upcoming_images(2):
            img = p.image(image_id)
            self.cache.prefetch(img.id, p.image_path(img.id), (img.width, img.height))
            ctx = build_context(p, image_id, layers=c.layers, threshold=c.threshold)
            self.cache.prefetch_mask(ctx, overview_step(img.width, img.height, OVERVIEW_MAX_SIDE))

    def _sync_image_list(self, image_id: int) -> None:
        c = self.controller
        if c is None:
            return
        row = c.image_model.row_of(image_id)
        if row is None:
            return
        index = self.image_proxy.mapFromSource(c.image_model.index(row))
        if index.isValid():
            self.image_list.setCurrentIndex(index)
            self.image_list.scrollTo(index)

    def _open_image_from_list(self, image_id: int | None) -> None:
        if self.controller is not None and image_id is not None:
            self.controller.open_image(int(image_id))
            self.view.setFocus()

    def _canvas_selected(self, key: Key | None) -> None:
        if self.controller is not None:
            self.controller.select(key)

    def set_tool(self, name: str) -> None:
        """Make a correction tool active (select, brush, eraser, box, polygon, refine)."""
        tool = self.tools.get(name)
        self.scene.set_tool(tool)
        if name in self.tool_actions:
            self.tool_actions[name].setChecked(True)
        self.statusBar().showMessage(f"tool: {name}", 2000)

    def _cycle_edit_tool(self) -> None:
        order = ["select", "brush", "eraser"]
        current = self.scene.tool.name if self.scene.tool is not None else "select"
        if isinstance(self.scene.tool, BrushTool) and self.scene.tool.erase:
            current = "eraser"
        nxt = order[(order.index(current) + 1) % len(order)] if current in order else "select"
        self.set_tool(nxt)

    def _brush_size_changed(self, value: int) -> None:
        for tool in self.tools.values():
            if isinstance(tool, BrushTool):
                tool.radius = value

    def _brush_step(self, delta: int) -> None:
        self.brush_size.setValue(self.brush_size.value() + delta)

    def _layer_toggled(self, name: str, on: bool) -> None:
        if self.controller is not None:
            self.controller.set_layers(**{name: on})

    def _threshold_changed(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self.controller is not None:
            self.controller.set_threshold(value / 100)

    # --- keys the shortcut system cannot express ---------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        # Space: a tap is "next pending", holding it while dragging pans the canvas.
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self.controller is not None:
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if (
                key_event.key() == Qt.Key.Key_Space
                and not key_event.isAutoRepeat()
                and not isinstance(obj, _TEXT_INPUTS)
                and self._space_is_ours()
            ):
                if event.type() == QEvent.Type.KeyPress:
                    self.view.space_down()
                elif not self.view.space_up():
                    self.controller.next_pending()
                return True
        return super().eventFilter(obj, event)

    def _space_is_ours(self) -> bool:
        if not self.isActiveWindow() and QApplication.activeWindow() is not None:
            return False
        focus = QApplication.focusWidget()
        return not isinstance(focus, _TEXT_INPUTS) and (focus is None or focus.window() is self)

    def warn(self, title: str, text: str) -> QMessageBox:
        """Show a problem without blocking: a modal box would freeze a screenshot or a test run."""
        self.statusBar().showMessage(f"{title}: {text}")
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("warning")
        box.open()
        return box

    # --- export, help, modified mark -----------------------------------------------------------
    def export(self) -> list[Path]:
        """Export COCO (Ctrl+S) into the project's exports folder."""
        if self.controller is None:
            return []
        try:
            return self.controller.export()
        except FusereviewError as exc:
            self.warn("Export failed", str(exc))
            return []

    def _clean_changed(self, clean: bool) -> None:
        self.setWindowModified(not clean)
        self.unsaved_label.setText("" if clean else "● not exported")

    def show_shortcuts(self) -> QDialog:
        """Show every shortcut (?)."""
        dialog = QDialog(self)
        dialog.setObjectName("shortcuts_dialog")
        dialog.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(dialog)
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in SHORTCUTS)
        label = QLabel(f"<table>{rows}</table>")
        lay.addWidget(label)
        dialog.show()
        return dialog

    # --- shutdown ------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self._closing = True
        self.save_layout()
        self._pending_predict = False
        QApplication.instance().removeEventFilter(self)
        self.close_project()
        self.cache.shutdown()
        super().closeEvent(event)


def _reviewer_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): decisions are simply unsigned
        print("fusereview: no user name found; decisions are recorded without a reviewer", file=sys.stderr)
        return ""
