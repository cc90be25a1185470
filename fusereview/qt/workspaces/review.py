"""The Review workspace: the image list, the canvas with its tools, the queue over details and prompts.

Laid out for a 1366x768 laptop screen: one horizontal splitter (images | canvas | queue column),
the queue column split between the queue (most of the height) and a tab of details and prompts.
Nothing here holds review state: the :class:`~fusereview.qt.controller.ReviewController` does; the
workspace shows what it says and turns the mouse and the tool keys into its calls.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from fusereview.core.errors import FusereviewError
from fusereview.qt.canvas.render import Key, RenderContext, overview_step
from fusereview.qt.canvas.scene import OVERVIEW_MAX_SIDE, CanvasScene, FrameCache, build_context
from fusereview.qt.canvas.tools import BoxTool, BrushTool, ClickTool, PolygonTool, SelectTool, Tool
from fusereview.qt.canvas.view import CanvasView
from fusereview.qt.controller import ReviewController
from fusereview.qt.label_issues import LabelIssuesController
from fusereview.qt.models.image_list import ImageFilterProxy, ImageIdRole
from fusereview.qt.panels.details import DetailsPanel
from fusereview.qt.panels.label_issues import LabelIssuesPanel, QueueModes
from fusereview.qt.panels.prompts import PromptsPanel
from fusereview.qt.panels.review import ReviewPanel

PREFETCH_DELAY_MS = 60
#: (name, label, key, tooltip) of the correction tools, in toolbar order.
TOOLS = (
    ("select", "Select", "V", "select; drag a box's handles (the mask is clipped or moved with it)"),
    ("brush", "Brush", "B", "paint the selected item's mask (box and area follow)"),
    ("eraser", "Eraser", "X", "erase from the selected item's mask"),
    ("box", "Box", "D", "draw a box for a missed object (box only)"),
    ("polygon", "Polygon", "G", "click the vertices of a missed object, Enter closes"),
    ("refine", "Refine", "S", "draw a box: SAM3 segments inside it"),
    ("click", "Click", "C", "left click = object, right click = background, Enter accepts, Esc discards"),
)
SPLITTER_SIZES = (230, 760, 360)  # images | canvas | queue column at 1366 px


class ReviewWorkspace(QWidget):
    """Images, canvas and queue of one project (see the module docstring).

    Signals
    -------
    frame_shown(int):
        An image was put on the canvas.
    status(str, int):
        A message for the status bar, and how long to show it (ms, 0: until replaced).
    """

    frame_shown = Signal(int)
    status = Signal(str, int)

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("review_workspace")
        self.settings = settings
        self.controller: ReviewController | None = None
        self.runner: Any = None  # the window's JobRunner (the Click tool segments in the background)
        self._click_head: Any = None  # the model's interactive head (None: Click greyed out)
        self._click_why = "no model loaded yet"
        self.cache = FrameCache()
        self.scene = CanvasScene(self.cache)
        self.view = CanvasView(self.scene)
        self.tools: dict[str, Tool] = {}
        self.scene.selection_changed.connect(self._canvas_selected)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("review_splitter")
        self.splitter.addWidget(self._build_images())
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self._build_queue_column())
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setCollapsible(2, False)
        self.splitter.setSizes(list(SPLITTER_SIZES))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.toolbar = self._build_toolbar()
        self.set_click_head(None, self._click_why)  # greyed out until a model's interactive head loads
        state = settings.value("review/splitter")
        if state is not None:
            self.splitter.restoreState(state)

    # --- building -----------------------------------------------------------------------------
    def _build_images(self) -> QWidget:
        images = QWidget()
        images.setObjectName("images_panel")
        images.setMinimumWidth(150)
        lay = QVBoxLayout(images)
        lay.setContentsMargins(4, 4, 0, 4)
        self.image_filter = QLineEdit()
        self.image_filter.setPlaceholderText("filter images…")
        self.image_filter.setClearButtonEnabled(True)
        self.image_list = QListView()
        self.image_list.setObjectName("image_list")
        self.image_list.setUniformItemSizes(True)
        self.image_list.setIconSize(QSize(48, 48))
        self.image_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.image_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        lay.addWidget(self.image_filter)
        # shown while the list holds only a review set sent from the evaluation
        self.review_set_button = QPushButton("Show all images")
        self.review_set_button.setToolTip("leave the review set sent from the evaluation")
        self.review_set_button.clicked.connect(self.clear_review_set)
        self.review_set_button.setVisible(False)
        lay.addWidget(self.review_set_button)
        lay.addWidget(self.image_list, 1)
        self.image_proxy = ImageFilterProxy()
        self.image_filter.textChanged.connect(self.image_proxy.set_text)
        self.image_list.clicked.connect(lambda index: self.open_image_from_list(index.data(ImageIdRole)))
        return images

    def _build_queue_column(self) -> QWidget:
        self.queue_holder = QStackedWidget()
        self.queue_holder.setMinimumWidth(300)
        self.details_holder = QStackedWidget()
        self.prompts_holder = QStackedWidget()
        self.side_tabs = QTabWidget()
        self.side_tabs.setObjectName("side_tabs")
        self.side_tabs.addTab(self.details_holder, "Details")
        self.side_tabs.addTab(self.prompts_holder, "Prompts")
        # the queue's two modes (pending predictions, label issues: issue 14) above its pages
        self.queue_modes = QueueModes(self.queue_holder)
        column = QSplitter(Qt.Orientation.Vertical)
        column.setObjectName("queue_column")
        column.addWidget(self.queue_modes)
        column.addWidget(self.side_tabs)
        column.setStretchFactor(0, 1)
        column.setCollapsible(0, False)
        column.setSizes([440, 230])
        self.column = column
        return column

    def _build_toolbar(self) -> QToolBar:
        """The tools and view options above the canvas (the window shows it with this workspace)."""
        bar = QToolBar("Review tools")
        bar.setObjectName("toolbar_review")
        group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for name, text, key, tip in TOOLS:
            act = self.shortcut(text, key, lambda _=False, n=name: self.set_tool(n), checkable=True)
            act.setToolTip(f"{text} ({key}): {tip}")
            group.addAction(act)
            bar.addAction(act)
            self.tool_actions[name] = act
        self.tool_actions["select"].setChecked(True)
        self.brush_size = QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(8)
        self.brush_size.setPrefix("brush ")
        self.brush_size.setToolTip("brush radius in image pixels ([ and ] change it)")
        self.brush_size.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.brush_size.valueChanged.connect(self._brush_size_changed)
        bar.addWidget(self.brush_size)
        bar.addSeparator()
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
            act.setToolTip(f"show or hide {text.lower()}")
            act.toggled.connect(lambda on, n=name: self._layer_toggled(n, on))
            bar.addAction(act)
            self.layer_actions[name] = act
        bar.addSeparator()
        bar.addWidget(QLabel(" threshold "))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setObjectName("threshold")
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setMaximumWidth(120)
        self.threshold_slider.setToolTip("hide predictions scoring below; Shift+A / Shift+R use it")
        self.threshold_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.threshold_label = QLabel("0.00")
        self.threshold_slider.valueChanged.connect(self._threshold_changed)
        self._threshold_timer = QTimer(self)
        self._threshold_timer.setSingleShot(True)
        self._threshold_timer.setInterval(600)
        self._threshold_timer.timeout.connect(self._store_threshold)
        bar.addWidget(self.threshold_slider)
        bar.addWidget(self.threshold_label)
        bar.addSeparator()
        self.fit_action = self.shortcut("Fit", "F", self.view.fit)
        self.actual_action = self.shortcut("1:1", "Ctrl+0", self.view.actual_size)
        bar.addAction(self.fit_action)
        bar.addAction(self.actual_action)
        self.shortcut("Edit", "E", self.cycle_edit_tool)
        self.shortcut("Brush smaller", "[", lambda: self._brush_step(-2))
        self.shortcut("Brush larger", "]", lambda: self._brush_step(2))
        return bar

    def shortcut(
        self, text: str, keys: str | list[str] | None, slot: Any, *, checkable: bool = False
    ) -> QAction:
        """An action of this workspace: its keys work only while the workspace is shown.

        The window calls :meth:`set_active`, which enables the workspace's actions only while it
        is the current one: a key pressed in Train must never accept a prediction nobody sees.
        """
        from PySide6.QtGui import QKeySequence

        act = QAction(text, self)
        if keys:
            act.setShortcuts([QKeySequence(k) for k in ([keys] if isinstance(keys, str) else keys)])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def set_active(self, active: bool) -> None:
        """Enable this workspace's key actions and show its toolbar only while it is current."""
        for act in self.actions():
            act.setEnabled(active)
        self.tool_actions["click"].setEnabled(active and self._click_head is not None)
        self.toolbar.setVisible(active)
        self._active = active

    def set_click_head(self, segmenter: Any, why: str) -> None:
        """The model's interactive head for the Click tool (``None``: greyed out, ``why`` says why)."""
        self._click_head, self._click_why = segmenter, why
        act = self.tool_actions["click"]
        act.setEnabled(segmenter is not None and getattr(self, "_active", False))
        act.setToolTip(
            "Click (C): left click = object, right click = background, Enter accepts, Esc discards"
            if segmenter is not None
            else f"Click (C) unavailable: {why}"
        )
        issues = getattr(self, "issues", None)
        if issues is not None:  # label issues ask the same head about label boxes
            issues.set_segmenter(segmenter, why)
        tool = self.tools.get("click")
        if isinstance(tool, ClickTool):
            tool.set_segmenter(segmenter, why)
            if segmenter is None and self.scene.tool is tool:
                self.set_tool("select")

    def save_layout(self) -> None:
        """Remember the splitter positions."""
        self.settings.setValue("review/splitter", self.splitter.saveState())

    # --- a project ----------------------------------------------------------------------------
    def attach(self, controller: ReviewController) -> None:
        """Show a project's review (the controller's models, panels and canvas)."""
        self.detach()
        self.controller = controller
        self.image_proxy.setSourceModel(controller.image_model)
        self.image_list.setModel(self.image_proxy)
        for holder, panel in (
            (self.queue_holder, ReviewPanel(controller)),
            (self.details_holder, DetailsPanel(controller)),
        ):
            holder.addWidget(panel)
            holder.setCurrentWidget(panel)
        # label issues mode: the queue's second page; its outlines go on the canvas
        self.issues = LabelIssuesController(controller)
        self.issues.runner = self.runner
        self.issues.set_segmenter(self._click_head, self._click_why)
        self.issues.marks_changed.connect(self.scene.show_errors)
        self.queue_modes.bind(self.issues, LabelIssuesPanel(self.issues))
        self.prompts = PromptsPanel(controller.project)
        self.prompts_holder.addWidget(self.prompts)
        self.prompts_holder.setCurrentWidget(self.prompts)
        controller.context_changed.connect(self._show_context)
        self.tools = {
            "select": SelectTool(self.scene, controller),
            "brush": BrushTool(self.scene, controller, erase=False, radius=self.brush_size.value()),
            "eraser": BrushTool(self.scene, controller, erase=True, radius=self.brush_size.value()),
            "box": BoxTool(self.scene, controller, refine=False),
            "polygon": PolygonTool(self.scene, controller),
            "refine": BoxTool(self.scene, controller, refine=True),
            "click": ClickTool(self.scene, controller, self.runner),
        }
        self.tools["click"].set_segmenter(self._click_head, self._click_why)
        self.set_tool("select", quiet=True)
        stored = controller.project.get_setting("review_threshold")
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(float(stored) * 100) if stored else 0)
        self.threshold_slider.blockSignals(False)
        self.threshold_label.setText(f"{self.threshold_slider.value() / 100:.2f}")
        controller.set_threshold(self.threshold_slider.value() / 100)

    def detach(self) -> None:
        """Forget the project (its panels are deleted)."""
        self.queue_modes.unbind()
        for holder in (self.queue_holder, self.details_holder, self.prompts_holder):
            while holder.count():
                w = holder.widget(0)
                holder.removeWidget(w)
                w.deleteLater()
        self.scene.set_tool(None)
        self.tools = {}
        self.cache.clear()
        self.controller = None
        self.clear_review_set()

    def shutdown(self) -> None:
        """Stop the frame cache's thread (the window is closing)."""
        self.detach()
        self.cache.shutdown()

    # --- canvas --------------------------------------------------------------------------------------
    def _show_context(self, ctx: RenderContext, image_changed: bool) -> None:
        c = self.controller
        if c is None or c.image_id is None:
            return
        project = c.project
        if image_changed or self.scene.image_id != c.image_id:
            img = project.image(c.image_id)
            try:
                frame = self.cache.frame(img.id, project.image_path(img.id), (img.width, img.height))
            except FusereviewError as exc:
                self.status.emit(str(exc), 0)
                return
            self.scene.show_frame(frame, ctx)
            if self.view._fit_mode:
                self.view.fit()
            self._sync_image_list(img.id)
            self.frame_shown.emit(img.id)
            # after this frame is painted, not before it
            QTimer.singleShot(PREFETCH_DELAY_MS, self._prefetch)
        else:
            self.scene.set_context(ctx)

    def _prefetch(self) -> None:
        c = self.controller
        if c is None:
            return
        p = c.project
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

    def open_image_from_list(self, image_id: int | None) -> None:
        """Open the image picked in the list (or sent from elsewhere)."""
        if self.controller is not None and image_id is not None:
            self.controller.open_image(int(image_id))
            self.view.setFocus()

    def _canvas_selected(self, key: Key | None) -> None:
        if self.controller is not None:
            self.controller.select(key)

    # --- tools ---------------------------------------------------------------------------------------
    def set_tool(self, name: str, *, quiet: bool = False) -> None:
        """Make a correction tool active (select, brush, eraser, box, polygon, refine)."""
        tool = self.tools.get(name)
        self.scene.set_tool(tool)
        if name in self.tool_actions:
            self.tool_actions[name].setChecked(True)
        if not quiet:
            self.status.emit(f"tool: {name}", 2000)

    def cycle_edit_tool(self) -> None:
        """E: select/handles → brush → eraser."""
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
            # the project's review threshold: comparisons and reports take their operating point
            # from it (evaluation.operating_point); written once the slider rests
            self._threshold_timer.start()

    def _store_threshold(self) -> None:
        if self.controller is not None:
            value = self.threshold_slider.value() / 100
            self.controller.project.set_setting("review_threshold", value if value > 0 else None)

    # --- review sets and evaluation overlays -----------------------------------------------------
    def show_evaluated_image(self, image_id: int, overlays: dict) -> int:
        """Open an image picked in the evaluation, its misses and false positives outlined.

        Missed objects, false positives and duplicates are drawn dashed in the evaluation's
        colours (``overlays`` as ``EvaluationPanel.imageActivated`` sends it). Returns the number
        of outlines drawn.
        """
        self.open_image_from_list(image_id)
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
        """Show only the images an evaluation found errors on; returns their ids."""
        if self.controller is None:
            return []
        known = {img.id for img in self.controller.project.images()}
        ids = sorted({int(o["image_id"]) for o in (*false_negatives, *false_positives)} & known)
        self.image_proxy.set_ids(ids)
        self.review_set_button.setText(f"Show all images (review set: {len(ids)})")
        self.review_set_button.setVisible(True)
        if ids:
            self.open_image_from_list(ids[0])
        self.status.emit(
            f"review set: {len(ids)} images with {len(false_negatives)} missed objects and "
            f"{len(false_positives)} weak false positives",
            15000,
        )
        return ids

    def clear_review_set(self) -> None:
        """Show every image again."""
        self.image_proxy.set_ids(None)
        self.review_set_button.setVisible(False)
