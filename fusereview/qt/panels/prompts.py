"""The prompt editor: the text SAM3 is asked with for each category, with re-predict.

"fuse neutrals" may work better as "neutral link": the reviewer edits the prompt, the project
stores it, and the affected images are predicted again in the background.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fusereview.core.project import Project


class PromptsPanel(QWidget):
    """One row per category: name and editable prompt.

    Signals
    -------
    repredict_requested(object):
        Category ids whose prompt changed (or all, from the button): predict their images again.
    """

    repredict_requested = Signal(object)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.setObjectName("prompts_panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("Text prompt per category (double-click to edit)"))
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["category", "prompt"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        layout.addWidget(self.table, 1)
        self.repredict = QPushButton("Re-predict all images")
        self.repredict.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(self.repredict)
        self._loading = False
        self.reload()
        self.table.itemChanged.connect(self._changed)
        self.repredict.clicked.connect(
            lambda: self.repredict_requested.emit([c.id for c in project.categories()])
        )

    def reload(self) -> None:
        """Re-read categories and prompts from the project."""
        self._loading = True
        try:
            cats = self.project.categories()
            self.table.setRowCount(len(cats))
            for row, cat in enumerate(cats):
                name = QTableWidgetItem(cat.name)
                name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
                name.setData(Qt.ItemDataRole.UserRole, cat.id)
                self.table.setItem(row, 0, name)
                self.table.setItem(row, 1, QTableWidgetItem(cat.prompt))
        finally:
            self._loading = False

    def _changed(self, item: QTableWidgetItem) -> None:
        if self._loading or item.column() != 1:
            return
        cat_id = int(self.table.item(item.row(), 0).data(Qt.ItemDataRole.UserRole))
        text = item.text().strip()
        current = {c.id: c.prompt for c in self.project.categories()}[cat_id]
        if not text:
            self.reload()  # an empty prompt would find nothing: keep the old one
            return
        if text == current:
            return
        self.project.set_prompt(cat_id, text)
        self.repredict_requested.emit([cat_id])
