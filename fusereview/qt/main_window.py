"""The main window: menus, three workspaces (Review, Train, Evaluate), the status bar, background jobs.

The window is a shell. Each workspace (``fusereview/qt/workspaces``) lays out its own job for a
1366x768 screen; the :class:`~fusereview.qt.controller.ReviewController` holds the undo stack and
turns actions into core calls; background jobs (model loading, prediction, SAM3 refine) run
through a :class:`~fusereview.qt.workers.JobRunner`. Geometry, the current workspace and splitter
positions are remembered in ``QSettings``.
"""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QTextEdit,
    QToolBar,
    QToolButton,
)

from fusereview.core.errors import FusereviewError
from fusereview.core.events import Event
from fusereview.core.project import Project
from fusereview.qt.controller import ReviewController
from fusereview.qt.dialogs import SHORTCUTS, AboutDialog, PreferencesDialog, ShortcutSheet, preference
from fusereview.qt.gc_guard import settle
from fusereview.qt.label_issues import BOX_CHECK_KEY, KIND_KEY, LABEL_ISSUE_KEYS, MODE_KEY
from fusereview.qt.panels.start_page import StartPage, recent_projects, remember_project
from fusereview.qt.workers import JobRunner, LoadInteractiveJob, LoadModelJob, PredictJob, RefineJob
from fusereview.qt.workspaces.review import ReviewWorkspace
from fusereview.qt.workspaces.runs import EvaluateWorkspace, TrainWorkspace

__all__ = ["SHORTCUTS", "MainWindow"]

EXTERNAL_POLL_MS = 1500  # how often the window looks for other processes' writes
_TEXT_INPUTS = (QLineEdit, QTextEdit, QAbstractSpinBox)  # where Space is a character, not "next"
WORKSPACES = ("review", "train", "evaluate")


class MainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    settings:
        Where geometry, layout, recent projects and preferences are remembered (tests pass a
        temporary one).

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
        self.resize(1366, 768)
        self.project: Project | None = None
        self.controller: ReviewController | None = None
        self.predictor: Any = None
        self.model_spec: str | None = None
        self.runner = JobRunner(self)
        self.predict_job: PredictJob | None = None
        self._pending_predict = False
        self._closing = False
        self.closed_in_s: float | None = None  # how long closing took until the window was gone
        self._resegment: tuple[Any, Any] | None = None

        self.review = ReviewWorkspace(self.settings)
        self.review.runner = self.runner  # the Click tool's background segmentation (issue 15)
        self.review.frame_shown.connect(self.frame_shown)
        self.review.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.train = TrainWorkspace()
        self.train.on_run_finished = self._run_finished
        self.evaluate = EvaluateWorkspace()
        self.evaluate.connect_panel = self._connect_evaluation
        self.start_page = StartPage(self.settings)
        self.start_page.open_requested.connect(self.open_path)
        self.start_page.demo_requested.connect(self.open_demo)
        self.stack = QStackedWidget()
        for page in (self.start_page, self.review, self.train, self.evaluate):
            self.stack.addWidget(page)
        self.setCentralWidget(self.stack)

        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbars()
        self.shortcut_sheet = ShortcutSheet(self)
        QApplication.instance().installEventFilter(self)  # Space: tap = next, hold = pan
        self._restore_layout()
        self.show_workspace(None)
        # Follow other processes' writes (a CLI predict on the same project): SQLite's
        # data_version is one cheap read per tick.
        self.external_timer = QTimer(self)
        self.external_timer.setInterval(EXTERNAL_POLL_MS)
        self.external_timer.timeout.connect(self.poll_external_changes)
        self.external_timer.start()

    # --- what the workspaces show (short names the scripts and tests use) ------------------------
    @property
    def view(self) -> Any:
        """The canvas view."""
        return self.review.view

    @property
    def scene(self) -> Any:
        """The canvas scene."""
        return self.review.scene

    @property
    def cache(self) -> Any:
        """The canvas's decoded photos."""
        return self.review.cache

    @property
    def training_panel(self) -> Any:
        """The training panel (``None`` until the Train workspace was first shown)."""
        return self.train.panel

    @property
    def evaluation_panel(self) -> Any:
        """The evaluation panel (``None`` until the Evaluate workspace was first shown)."""
        return self.evaluate.panel

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
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_jobs)
        # Cancel shows while any job runs (prediction, SAM3 re-segmenting, model loading)
        self.runner.busy_changed.connect(lambda busy: self.cancel_button.setVisible(busy))
        self.resegment_button = QToolButton()
        self.resegment_button.setObjectName("resegment_button")
        self.resegment_button.setText("Re-segment in the new box")
        self.resegment_button.setToolTip("SAM3 segments inside the box you just drew (in the background)")
        self.resegment_button.setVisible(False)
        self.resegment_button.clicked.connect(self.resegment)
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

    def _action(
        self, text: str, keys: str | list[str] | None, slot: Any, *, checkable: bool = False
    ) -> QAction:
        act = QAction(text, self)
        if keys:
            act.setShortcuts([QKeySequence(k) for k in ([keys] if isinstance(keys, str) else keys)])
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

    def _next_issue_kind(self, controller: Any) -> None:
        """Shift+L: show the label-issues queue, or, when it is shown, its next kind."""
        issues = controller.label_issues
        if issues is None:
            return
        if not issues.active:
            self.review.queue_modes.set_mode(True)
        else:
            issues.cycle_kind()

    def _build_actions(self) -> None:
        r = self._needs_review
        ws = self.review.shortcut  # review keys live in the Review workspace (off elsewhere)
        self.actions_by_name: dict[str, QAction] = {
            "accept": ws("Accept", "A", r(lambda c: c.accept())),
            "reject": ws("Reject", "R", r(lambda c: c.reject())),
            "delete": ws("Delete annotation", "Delete", r(lambda c: c.delete())),
            "take_geometry": ws("Take the prediction's box and mask", "T", r(lambda c: c.take_geometry())),
            "box_only": ws("Box only", "O", r(lambda c: c.make_box_only())),
            "next": ws("Next pending", "N", r(lambda c: c.next_pending())),
            "previous": ws("Previous pending", "P", r(lambda c: c.previous_pending())),
            "next_image": ws("Next image", "PgDown", r(lambda c: c.step_image(1))),
            "previous_image": ws("Previous image", "PgUp", r(lambda c: c.step_image(-1))),
            "next_on_image": ws("Next item on image", "Tab", r(lambda c: c.next_on_image())),
            "accept_above": ws("Accept all above threshold", "Shift+A", r(lambda c: c.accept_above())),
            "reject_below": ws("Reject all below threshold", "Shift+R", r(lambda c: c.reject_below())),
            "undo": ws("Undo", ["Ctrl+Z"], r(lambda c: c.undo())),
            "redo": ws("Redo", ["Ctrl+Shift+Z", "Ctrl+Y"], r(lambda c: c.redo())),
            "fit": self.review.fit_action,
            "actual": self.review.actual_action,
            "open": self._action("Open dataset or project…", "Ctrl+O", self.choose_and_open),
            "export": self._action("Export COCO", "Ctrl+S", self.export),
            "export_as": self._action("Export as…", "Ctrl+Shift+S", self.export_as),
            "quit": self._action("Quit", "Ctrl+Q", self.close),
            "preferences": self._action("Preferences…", "Ctrl+,", self.show_preferences),
            "help": self._action("Keyboard shortcuts", ["?", "Shift+?", "F1"], self.show_shortcuts),
            "about": self._action("About fusereview", None, self.show_about),
        }
        for n in range(1, 10):
            ws(f"Category {n}", str(n), r(lambda c, n=n: c.set_category_number(n)))
        # label issues mode (issue 14): L switches the queue's mode, one key per fix (Review only)
        self.actions_by_name["label_issues_mode"] = ws(
            "Label issues", MODE_KEY, lambda: self.review.queue_modes.toggle()
        )
        self.actions_by_name["label_issues_kind"] = ws(
            "Label issues: next kind", KIND_KEY, r(lambda c: self._next_issue_kind(c))
        )
        self.actions_by_name["label_issues_check_boxes"] = ws(
            "Label issues: ask the model about label boxes",
            BOX_CHECK_KEY,
            r(lambda c: c.label_issues is not None and c.label_issues.check_boxes()),
        )
        for action, key, text in LABEL_ISSUE_KEYS:
            self.actions_by_name[f"label_issue_{action}"] = ws(
                text, key, r(lambda c, a=action: c.label_issues.fix(a))
            )
        group = QActionGroup(self)
        self.workspace_actions: dict[str, QAction] = {}
        for i, (name, text, tip) in enumerate(
            (
                ("review", "Review", "images, canvas and the review queue"),
                ("train", "Train", "retrain on what was corrected, live plots"),
                ("evaluate", "Evaluate", "COCO metrics, errors image by image, comparisons"),
            ),
            start=1,
        ):
            act = self._action(
                text, f"Ctrl+{i}", lambda _=False, n=name: self.show_workspace(n), checkable=True
            )
            act.setToolTip(f"{text} (Ctrl+{i}): {tip}")
            group.addAction(act)
            self.workspace_actions[name] = act

    def _build_menus(self) -> None:
        a = self.actions_by_name
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(a["open"])
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(a["export"])
        file_menu.addAction(a["export_as"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addAction(a["undo"])
        edit_menu.addAction(a["redo"])
        edit_menu.addSeparator()
        edit_menu.addAction(a["preferences"])
        view_menu = self.menuBar().addMenu("&View")
        for act in self.workspace_actions.values():
            view_menu.addAction(act)
        view_menu.addSeparator()
        for act in self.review.layer_actions.values():
            view_menu.addAction(act)
        view_menu.addSeparator()
        view_menu.addAction(a["fit"])
        view_menu.addAction(a["actual"])
        review_menu = self.menuBar().addMenu("&Review")
        for name in ("accept", "reject", "delete", "take_geometry", "box_only", "next", "previous"):
            review_menu.addAction(a[name])
        review_menu.addSeparator()
        review_menu.addAction(a["accept_above"])
        review_menu.addAction(a["reject_below"])
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(a["help"])
        help_menu.addAction(a["about"])

    def _build_toolbars(self) -> None:
        # the workspace switch sits in the menu bar's corner: it costs no row of a laptop screen
        bar = QToolBar("Workspaces")
        bar.setObjectName("toolbar_workspaces")
        bar.setMovable(False)
        for act in self.workspace_actions.values():
            bar.addAction(act)
        self.menuBar().setCornerWidget(bar, Qt.Corner.TopRightCorner)
        self.workspace_bar = bar
        self.addToolBar(self.review.toolbar)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = recent_projects(self.settings)
        for path in paths:
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
        if not paths:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    # --- workspaces ----------------------------------------------------------------------------
    def show_workspace(self, name: str | None) -> None:
        """Show a workspace (``None``: the start page when no project is open)."""
        if self.project is None:
            name = None
        if name is None and self.project is not None:
            name = "review"
        pages = {None: self.start_page, "review": self.review, "train": self.train, "evaluate": self.evaluate}
        for act_name, act in self.workspace_actions.items():
            act.setEnabled(self.project is not None)
            act.setChecked(act_name == name)
        self.review.set_active(name == "review")
        self.zoom_label.setVisible(name == "review")
        if name == "train":  # the model a run starts from is the one loaded now
            self.train.set_project(self.project, self.model_spec)
        self.train.set_active(name == "train")
        self.evaluate.set_active(name == "evaluate")
        self.stack.setCurrentWidget(pages[name])
        if name == "review":
            self.view.setFocus()

    @property
    def workspace(self) -> str | None:
        """The workspace shown (``None``: the start page)."""
        for name, act in self.workspace_actions.items():
            if act.isChecked():
                return name
        return None

    # --- settings ---------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def save_layout(self) -> None:
        """Remember geometry, the workspace and the splitters."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.review.save_layout()
        self.settings.sync()

    # --- opening ----------------------------------------------------------------------------------
    def choose_and_open(self) -> None:
        """File ▸ Open: a dataset folder, a COCO json or a project folder."""
        path = QFileDialog.getExistingDirectory(self, "Open a dataset or project folder")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> None:
        """Open a project folder or a dataset (imported into a project beside it the first time)."""
        try:
            project = Project.open_or_import(path)
        except FusereviewError as exc:
            self.warn("Cannot open", str(exc))
            return
        self.open_project(project)

    def open_demo(self) -> None:
        """Open the demo `fusereview demo` opens: the synthetic dataset and the shipped demo model."""
        from fusereview.demo.project import demo_model_dir, prepare_demo_project

        try:
            project = prepare_demo_project(progress=lambda msg: self.statusBar().showMessage(msg))
            model = demo_model_dir()
        except FusereviewError as exc:
            self.warn("Cannot open the demo", str(exc))
            return
        self.open_project(project)
        if self.predictor is None:
            self.load_model(str(model))

    def open_project(self, project: Project) -> None:
        """Show a project in the Review workspace; uses its active model when none is loaded."""
        self.close_project()
        self.project = project
        c = ReviewController(project, reviewer=self.reviewer_name())
        self.controller = c
        remember_project(self.settings, project.root)
        self.review.attach(c)
        self.review.prompts.repredict_requested.connect(self._repredict)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        c.refine_requested.connect(self._refine)
        c.resegment_offered.connect(self._offer_resegment)
        c.stack.cleanChanged.connect(self._clean_changed)
        self._clean_changed(True)
        self.train.set_project(project, self.model_spec)
        self.evaluate.set_project(project)
        read_only = getattr(project, "read_only", False)
        self.setWindowTitle(f"{project.root.name}{' (read-only)' if read_only else ''} — fusereview[*]")
        self.show_workspace("review")
        if read_only:
            # read-only media: viewing works; every change is refused with this reason
            self.statusBar().showMessage(
                f"{project.root} is on read-only media: open for viewing only; copy it somewhere "
                "writable to review"
            )
        if not c.go_to_row(0):
            images = project.images()
            if images:
                c.open_image(images[0].id)
        self.view.setFocus()
        if self.predictor is not None:
            self.predict_all()
        else:
            self._load_active_model()

    def _load_active_model(self) -> None:
        """Without a model given, use the project's active one (and say so), or say there is none."""
        active = self.project.active_model() if self.project is not None else None
        if not active:
            self.model_label.setText("no model")
            self.model_label.setToolTip("this project has no active model: open it with --model, or retrain")
            return
        spec = str(active.get("spec", ""))
        if spec != "tiny" and not Path(spec).exists():
            self.model_label.setText("no model")
            self.statusBar().showMessage(f"the project's active model {spec} is not there any more", 0)
            return
        self.statusBar().showMessage(f"loading the project's active model {spec}", 5000)
        self.load_model(spec)

    def _connect_evaluation(self, panel: Any) -> None:
        # an image picked in the evaluation's error list opens on the canvas
        panel.imageActivated.connect(self.show_evaluated_image)
        panel.reviewRequested.connect(self.review_set)

    def show_evaluated_image(self, image_id: int, overlays: dict) -> int:
        """Open an evaluated image in Review with its errors outlined (see ReviewWorkspace)."""
        self.show_workspace("review")
        return self.review.show_evaluated_image(image_id, overlays)

    def review_set(self, false_negatives: list[dict], false_positives: list[dict]) -> list[int]:
        """Review only the images an evaluation found errors on."""
        self.show_workspace("review")
        return self.review.review_set(false_negatives, false_positives)

    def clear_review_set(self) -> None:
        """Show every image again."""
        self.review.clear_review_set()

    def _run_finished(self, info: dict) -> None:
        """A training run ended: compare its best model with the model it started from (Evaluate)."""
        self.statusBar().showMessage(f"training {info.get('status')}: {info.get('message', '')}", 15000)
        best = info.get("best_path")
        if not best or not self.model_spec or self._closing:
            return
        self.show_workspace("evaluate")
        if self.evaluation_panel is not None:
            base = Path(self.model_spec).name if self.model_spec != "tiny" else "tiny"
            self.evaluation_panel.compare_models(
                self.model_spec, f"current model ({base})", best, f"run {Path(info['run_dir']).name}"
            )

    def close_project(self) -> None:
        """Stop jobs, forget the project (closing its database)."""
        self.train.shutdown()
        self.evaluate.shutdown()
        self.runner.stop_all()
        self.predict_job = None
        self.review.detach()
        if self.controller is not None:
            self.controller.close()
            self.controller.deleteLater()
            self.controller = None
        if self.project is not None:
            self.project.close()
            self.project = None

    # --- model and jobs --------------------------------------------------------------------
    def load_model(self, spec: str, device: str | None = None) -> LoadModelJob:
        """Load a model in the background; predicting starts when it is loaded."""
        self.model_spec = spec
        self.model_label.setText(f"loading {Path(spec).name or spec}…")
        self.model_label.setToolTip(spec)
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
        settle()  # torch, transformers and the model are here to stay: out of the collector's walks
        name = self.model_spec or getattr(predictor, "fingerprint", "model")
        self.model_label.setText(f"model: {Path(name).name or name}")
        self.model_label.setToolTip(name)
        self.device_label.setText(f"device: {getattr(predictor, 'device', '?')}")
        self._load_click_head()  # issue 15: the Click tool follows the model's interactive head
        if self.project is not None:
            self.train.set_project(self.project, self.model_spec)
            self.predict_all()

    # --- the Click tool follows the model's interactive head (issue 15) ----------------------------
    def _load_click_head(self) -> LoadInteractiveJob:
        self.review.set_click_head(None, "loading the model's interactive head…")
        job = LoadInteractiveJob(self.model_spec or "", self.predictor)
        job.finished.connect(
            lambda seg, p=self.predictor: p is self.predictor and self.review.set_click_head(seg, "")
        )
        job.failed.connect(
            lambda why, p=self.predictor: p is self.predictor and self.review.set_click_head(None, why)
        )
        self.runner.start(job)
        return job

    def predict_threshold(self) -> float:
        """The prediction threshold (Edit ▸ Preferences)."""
        return float(preference(self.settings, "review/predict_threshold"))  # type: ignore[arg-type]

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
        job = PredictJob(self.project.root, self.predictor, ids, threshold=self.predict_threshold())
        job.progress.connect(self._job_progress)
        job.chunk_done.connect(self._predictions_arrived)
        job.finished.connect(self._predict_finished)
        job.failed.connect(self._predict_failed)
        self.predict_job = job
        self.job_label.setText("predicting")
        self.progress.setRange(0, len(ids))
        self.progress.setValue(0)
        self.progress.setVisible(True)
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
        found = self._stored_detections()
        if found == 0 and not counts.get("stopped") and counts.get("images", 0):
            self.statusBar().showMessage(
                f"0 detections above {self.predict_threshold():.2f} — lower the threshold "
                "(Edit ▸ Preferences) or check the prompt (Prompts tab)",
                0,
            )
            return
        self.statusBar().showMessage(
            f"prediction finished{stopped}: {counts.get('images', 0)} images, "
            f"{counts.get('detections', 0)} new detections ({found} of this model in the project){failed}",
            8000,
        )

    def _stored_detections(self) -> int:
        fingerprint = getattr(self.predictor, "fingerprint", None)
        if self.project is None or fingerprint is None:
            return 0
        row = self.project.db.read_one("SELECT COUNT(*) FROM predictions WHERE model = ?", (fingerprint,))
        return int(row[0]) if row else 0

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
        return self._refine(self.controller.image_id, box, self.controller.new_category_id, key)

    # --- tools (kept on the window for scripts) ---------------------------------------------------
    def set_tool(self, name: str) -> None:
        """Make a correction tool active (select, brush, eraser, box, polygon, refine)."""
        self.review.set_tool(name)

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
        if self.workspace != "review":
            return False
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

    # --- export, dialogs, modified mark --------------------------------------------------------
    def export(self) -> list[Path]:
        """Export COCO (Ctrl+S) into the project's exports folder."""
        if self.controller is None:
            self.statusBar().showMessage("nothing to export: open a project first", 4000)
            return []
        try:
            return self.controller.export()
        except FusereviewError as exc:
            self.warn("Export failed", str(exc))
            return []

    def export_as(self, target: str | None = None) -> list[Path]:
        """Export COCO to a chosen folder (Roboflow layout) or ``.json`` file (Ctrl+Shift+S)."""
        if self.controller is None:
            self.statusBar().showMessage("nothing to export: open a project first", 4000)
            return []
        if not target:
            target, _ = QFileDialog.getSaveFileName(
                self,
                "Export COCO as",
                str(self.controller.project.root / "exports"),
                "COCO json (*.json);;Folder (*)",
            )
        if not target:
            return []
        try:
            return self.controller.export(Path(target))
        except FusereviewError as exc:
            self.warn("Export failed", str(exc))
            return []

    def _clean_changed(self, clean: bool) -> None:
        self.setWindowModified(not clean)
        self.unsaved_label.setText("" if clean else "● not exported")

    def show_shortcuts(self) -> ShortcutSheet:
        """Show or hide every shortcut (? and Esc)."""
        self.shortcut_sheet.toggle()
        return self.shortcut_sheet

    def show_about(self) -> AboutDialog:
        """Help ▸ About: what this is, with versions."""
        dialog = AboutDialog(self)
        dialog.show()
        return dialog

    def show_preferences(self) -> PreferencesDialog:
        """Edit ▸ Preferences."""
        dialog = PreferencesDialog(self.settings, self)
        dialog.accepted.connect(self._preferences_saved)
        dialog.show()
        return dialog

    def _preferences_saved(self) -> None:
        if self.controller is not None:
            self.controller.session.reviewer = self.reviewer_name()
        self.statusBar().showMessage("preferences saved", 3000)

    def reviewer_name(self) -> str:
        """The name recorded with each decision: Preferences, else the login name."""
        name = str(preference(self.settings, "review/reviewer") or "").strip()
        return name or _login_name()

    # --- shutdown ------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        # The window goes at once: jobs are told to stop (a training saves a resumable
        # checkpoint) and are waited for after the window has disappeared.
        started = time.monotonic()
        self._closing = True
        self.save_layout()
        self._pending_predict = False
        self.shortcut_sheet.hide()
        for job in self.runner.jobs:
            job.request_stop()
        self.hide()
        QApplication.processEvents()
        self.closed_in_s = time.monotonic() - started
        QApplication.instance().removeEventFilter(self)
        self.close_project()
        self.review.shutdown()
        super().closeEvent(event)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): decisions are simply unsigned
        print("fusereview: no user name found; decisions are recorded without a reviewer", file=sys.stderr)
        return ""
