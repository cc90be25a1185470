"""The review panel: the queue of pending predictions, its order and filters, and the macros."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from fusereview.qt.controller import ReviewController
from fusereview.qt.models.queue import ORDERS


def queue_table(model: QAbstractItemModel, name: str) -> QTableView:
    """A read-only table of queue rows: whole rows selected one at a time, keys left to the shortcuts."""
    table = QTableView()
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(20)
    # uniform row heights: the view never measures 100,000 rows
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    return table


class ReviewPanel(QWidget):
    """Queue table (a view over the controller's queue model) with filter controls."""

    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("review_panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        row = QHBoxLayout()
        self.order = QComboBox()
        for key, label in ORDERS.items():
            self.order.addItem(label, key)
        self.split = QComboBox()
        self.split.addItem("all splits", None)
        for name in controller.project.splits():
            self.split.addItem(name, name)
        self.category = QComboBox()
        self.category.addItem("all categories", None)
        for cat in controller.categories:
            self.category.addItem(cat.name, cat.id)
        self.match = QComboBox()
        self.match.setObjectName("queue_match")
        self.match.setToolTip(
            "Predictions that match an existing label (IoU ≥ 0.5, same category) repeat it; "
            "by default the queue shows the ones that do not: those need a decision"
        )
        for text, value in (("not yet labelled", False), ("matching a label", True), ("all", None)):
            self.match.addItem(text, value)
        for w in (self.order, self.split, self.category, self.match):
            w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keys stay with the review shortcuts
            # a long category name must not widen the dock (the window never grows by itself)
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(8)
        for w in (self.order, self.split, self.category):
            row.addWidget(w)
        layout.addLayout(row)
        match_row = QHBoxLayout()
        match_row.addWidget(QLabel("show"))
        match_row.addWidget(self.match, 1)
        layout.addLayout(match_row)

        scores = QHBoxLayout()
        scores.addWidget(QLabel("score"))
        self.score_min = QDoubleSpinBox()
        self.score_max = QDoubleSpinBox()
        for box, value in ((self.score_min, 0.0), (self.score_max, 1.0)):
            box.setRange(0.0, 1.0)
            box.setSingleStep(0.05)
            box.setDecimals(2)
            box.setValue(value)
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            scores.addWidget(box)
        self.count = QLabel()
        scores.addWidget(self.count, 1, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(scores)

        self.table = queue_table(controller.queue_model, "queue")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # one category: the column would repeat its name on every row
        self.table.setColumnHidden(1, len(controller.categories) <= 1)
        layout.addWidget(self.table, 1)

        macros = QHBoxLayout()
        self.accept_above = QPushButton("Accept ≥ threshold")
        self.accept_above.setToolTip(
            "Accept every pending prediction of this image at or above the threshold (Shift+A)"
        )
        self.reject_below = QPushButton("Reject < threshold")
        self.reject_below.setToolTip(
            "Reject every pending prediction of this image below the threshold (Shift+R)"
        )
        for b in (self.accept_above, self.reject_below):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            macros.addWidget(b)
        layout.addLayout(macros)

        self.order.currentIndexChanged.connect(self._filters_changed)
        self.split.currentIndexChanged.connect(self._filters_changed)
        self.category.currentIndexChanged.connect(self._filters_changed)
        self.match.currentIndexChanged.connect(self._filters_changed)
        self.score_min.valueChanged.connect(self._filters_changed)
        self.score_max.valueChanged.connect(self._filters_changed)
        self.table.clicked.connect(self._clicked)
        self.accept_above.clicked.connect(lambda: controller.accept_above())
        self.reject_below.clicked.connect(lambda: controller.reject_below())
        controller.selection_changed.connect(self._follow_selection)
        model = controller.queue_model
        for sig in (model.modelReset, model.rowsRemoved, model.rowsInserted):
            sig.connect(self._update_count)
            # a reset or new rows (a prediction chunk arriving) drop the table's selection: the
            # row of the item the keys act on is highlighted again
            sig.connect(lambda *_: self._follow_selection(self.controller.selected))
        self._update_count()

    def _filters_changed(self) -> None:
        self.controller.set_queue_filter(
            order=self.order.currentData(),
            split=self.split.currentData(),
            category_id=self.category.currentData(),
            score_min=self.score_min.value(),
            score_max=self.score_max.value(),
            matched=self.match.currentData(),
        )
        self.controller.go_to_row(0)

    def _clicked(self, index: QModelIndex) -> None:
        self.controller.go_to_row(index.row())

    def _follow_selection(self, key: object) -> None:
        sel = self.table.selectionModel()
        if not (isinstance(key, tuple) and key[0] == "pred"):
            sel.clearSelection()
            return
        row = self.controller.queue_model.row_of(int(key[1]))
        if row is None:
            sel.clearSelection()
            return
        index = self.controller.queue_model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        sel.select(index, flags)
        self.table.scrollTo(index)

    def _update_count(self, *_: object) -> None:
        # the filter may have been set elsewhere (the controller, a test): show the one in force
        index = self.match.findData(self.controller.queue_model.filter.matched)
        if index >= 0 and index != self.match.currentIndex():
            self.match.blockSignals(True)
            self.match.setCurrentIndex(index)
            self.match.blockSignals(False)
        n = self.controller.queue_model.rowCount()
        text, tip = f"{n:,} pending", ""
        if self.controller.queue_model.filter.matched is False:
            hidden = self.controller.matched_pending_count()
            if hidden:
                text += f", {hidden:,} hidden"
                tip = (
                    f"{hidden:,} more pending predictions match an existing label (same category, IoU ≥ 0.5) "
                    "and are hidden; 'show: matching a label' lists them"
                )
        self.count.setText(text)
        self.count.setToolTip(tip)
