"""The review queue's two modes: pending predictions, and the "Label issues" queue.

:class:`QueueModes` holds the review panel and :class:`LabelIssuesPanel` and switches between
them (the mode box, or the L key); the label-issues panel shows the queue of
:class:`~fusereview.qt.label_issues.LabelIssuesController`: which model's predictions it is
scored with, the minimum score, the issues most likely first, and one button and key per fix.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from fusereview.core.label_issues import KIND_PLURALS
from fusereview.core.project_label_checks import ACTIONS
from fusereview.qt.label_issues import (
    BOX_CHECK_KEY,
    KIND_CYCLE,
    KIND_KEY,
    LABEL_ISSUE_KEYS,
    MODE_KEY,
    LabelIssuesController,
)
from fusereview.qt.panels.review import queue_table

MODES = ("pending predictions", "label issues")
#: Short button texts (the dock must stay narrow); the tooltip says it all.
BUTTON_TEXT = {
    "add": "add",
    "delete": "delete",
    "geometry": "take shape",
    "class": "take class",
    "right": "right",
}


class LabelIssuesPanel(QWidget):
    """The label-issues queue: model, minimum score, the issues, a button per fix."""

    def __init__(self, issues: LabelIssuesController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.issues = issues
        self.setObjectName("label_issues_panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.model_box = QComboBox()
        self.model_box.setObjectName("label_issues_model")
        self.model_box.setToolTip(
            "The model whose stored predictions the labels are compared with; predictions at a low "
            "threshold (fusereview label-issues --model M stores them at 0.05) make weak objects count"
        )
        self.min_score = QDoubleSpinBox()
        self.min_score.setObjectName("label_issues_min_score")
        self.min_score.setRange(0.0, 1.0)
        self.min_score.setSingleStep(0.05)
        self.min_score.setDecimals(2)
        self.min_score.setValue(issues.model.min_score)
        self.min_score.setPrefix("min ")
        self.kind_box = QComboBox()
        self.kind_box.setObjectName("label_issues_kind")
        for kind in KIND_CYCLE:
            self.kind_box.addItem("every kind" if kind is None else f"{KIND_PLURALS[kind]} only", kind)
        self.kind_box.setToolTip(
            f"Every kind in one queue (each label's likeliest), or one kind at a time: every label "
            f"scored for that kind, likeliest first ({KIND_KEY} for the next)"
        )
        for w in (self.model_box, self.min_score, self.kind_box):
            w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keys stay with the review shortcuts
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(10)
        row.addWidget(self.model_box, 1)
        row.addWidget(self.min_score)
        layout.addLayout(row)
        kind_row = QHBoxLayout()
        kind_row.addWidget(QLabel("show"))
        kind_row.addWidget(self.kind_box, 1)
        layout.addLayout(kind_row)
        self.count = QLabel()
        self.count.setObjectName("label_issues_count")
        self.count.setWordWrap(True)
        layout.addWidget(self.count)

        self.table = queue_table(issues.model, "label_issues")
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)  # what disagrees
        header.setSectionResizeMode(
            3, QHeaderView.ResizeMode.Interactive
        )  # the image (elided; the canvas shows it)
        header.resizeSection(3, 90)
        layout.addWidget(self.table, 1)

        self.buttons: dict[str, QPushButton] = {}
        for action, key, text in LABEL_ISSUE_KEYS:
            b = QPushButton(f"{key} {BUTTON_TEXT[action]}")
            b.setObjectName(f"label_issue_{action}")
            b.setToolTip(f"{text} ({key})")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, a=action: issues.fix(a))
            self.buttons[action] = b
        self.check_button = QPushButton("⇧U ask boxes")
        self.check_button.setObjectName("label_issues_check_boxes")
        self.check_button.setToolTip(
            "Ask the model about the box of each label no detection supports: prompted with the box, its "
            "interactive head segments an object the model overlooked, and nothing on a box on nothing "
            f"(spurious labels first) ({BOX_CHECK_KEY})"
        )
        self.check_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.check_button.clicked.connect(lambda _=False: issues.check_boxes())
        top, bottom = QHBoxLayout(), QHBoxLayout()
        for i, b in enumerate(self.buttons.values()):
            (top if i < 3 else bottom).addWidget(b)
        bottom.addWidget(self.check_button)
        layout.addLayout(top)
        layout.addLayout(bottom)
        help_text = QLabel(
            f"N / Space next, P previous, {KIND_KEY} next kind, Ctrl+Z undo; every fix goes in the project's history"
        )
        help_text.setWordWrap(True)
        layout.addWidget(help_text)

        self.model_box.activated.connect(self._model_chosen)
        self.min_score.editingFinished.connect(self._model_chosen)
        self.kind_box.activated.connect(lambda _=0: issues.set_kind(self.kind_box.currentData()))
        self.table.clicked.connect(self._clicked)
        issues.state_changed.connect(self._update)
        self._fill_models()
        self._update()

    def _fill_models(self) -> None:
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for fingerprint, n in self.issues.models():
            self.model_box.addItem(f"{fingerprint} ({n} predictions)", fingerprint)
        self.model_box.blockSignals(False)

    def _model_chosen(self, *_: object) -> None:
        self.issues.set_model(self.model_box.currentData(), self.min_score.value())

    def _clicked(self, index: QModelIndex) -> None:
        self.issues.go_to_row(index.row())

    def _update(self) -> None:
        m = self.issues.model
        if m.models_changed or (m.model is not None and self.model_box.findData(m.model) < 0):
            m.models_changed = False
            self._fill_models()  # a model run added predictions
        index = self.model_box.findData(m.model)
        if index >= 0 and index != self.model_box.currentIndex():
            self.model_box.setCurrentIndex(index)
        kind_index = KIND_CYCLE.index(m.kind)
        if kind_index != self.kind_box.currentIndex():
            self.kind_box.setCurrentIndex(kind_index)  # Shift+L changed it
        if not m.scored:
            self.count.setText(f"not scored yet: shown when this mode is ({MODE_KEY})")
        elif m.model is None or m.problem:
            self.count.setText(
                m.problem or self.issues.problem or "no predictions to compare the labels with: load a model"
            )
        else:
            counts: dict[str, int] = {}
            for issue in m.issues:
                counts[issue.kind] = counts.get(issue.kind, 0) + 1
            parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
            hidden = f"; {m.hidden} hidden by 'label is right'" if m.hidden else ""
            what = "issues" if m.kind is None else KIND_PLURALS[m.kind]
            boxes = f"; {len(m.box_support)} label boxes asked about" if m.box_support else ""
            self.count.setText(
                f"{len(m.issues)} {what} ≥ {m.min_score:.2f}"
                + (f" ({parts})" if parts and m.kind is None else "")
                + hidden
                + boxes
            )
        current = self.issues.current()
        enabled = set(ACTIONS[current.kind]) if current is not None and self.issues.active else set()
        for action, b in self.buttons.items():
            b.setEnabled(action in enabled)
        can_check = self.issues.segmenter is not None and self.issues.box_job is None
        self.check_button.setEnabled(can_check and m.model is not None)
        if self.issues.segmenter is None:
            self.check_button.setToolTip(f"Ask the model about label boxes: {self.issues.segmenter_why}")
        sel = self.table.selectionModel()
        if current is None or not self.issues.active:
            sel.clearSelection()
            return
        idx = m.index(self.issues.row, 0)
        sel.select(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.table.scrollTo(idx)


class QueueModes(QWidget):
    """The review queue dock's content: a mode box above the queue's pages.

    ``holder`` shows the pending-predictions panel (page 0) and, once :meth:`bind` gave it one,
    the label-issues panel (page 1); the box (or the L key) switches between them.
    """

    def __init__(self, holder: QStackedWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queue_modes")
        self.holder = holder
        self.issues: LabelIssuesController | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # shown with a project only (an empty dock must not widen the start page's window)
        self.mode_row = QWidget()
        row = QHBoxLayout(self.mode_row)
        row.setContentsMargins(4, 4, 4, 0)
        row.addWidget(QLabel("queue"))
        self.mode = QComboBox()
        self.mode.setObjectName("queue_mode")
        self.mode.addItems(MODES)
        self.mode.setToolTip(f"pending predictions, or the labels the model disagrees with ({MODE_KEY})")
        self.mode.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(8)
        row.addWidget(self.mode, 1)
        self.mode_row.setVisible(False)
        layout.addWidget(self.mode_row)
        layout.addWidget(holder, 1)
        self.mode.currentIndexChanged.connect(self._switched)

    def bind(self, issues: LabelIssuesController, panel: LabelIssuesPanel) -> None:
        """A project was opened: its label-issues queue becomes the second page."""
        self.issues = issues
        self.holder.addWidget(panel)
        self.mode_row.setVisible(True)

    def unbind(self) -> None:
        """The project is being closed: back to the first mode (its pages are removed by the window)."""
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(0)
        self.mode.blockSignals(False)
        self.mode_row.setVisible(False)
        self.issues = None

    def set_mode(self, label_issues: bool) -> None:
        """Show the label-issues queue (True) or the pending predictions (False)."""
        if self.issues is not None:
            self.mode.setCurrentIndex(1 if label_issues else 0)

    def toggle(self) -> None:
        """Switch mode (the L key)."""
        self.set_mode(self.mode.currentIndex() == 0)

    def _switched(self, index: int) -> None:
        if self.issues is None or self.holder.count() < 2:
            return
        self.holder.setCurrentIndex(index)
        self.issues.set_active(index == 1)
        if index == 0:
            self.issues.review.go_to_row(self.issues.review.queue_row)
