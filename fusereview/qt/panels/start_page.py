"""The start page shown by ``fusereview`` alone: recent projects, open a dataset, open the demo."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

RECENT_KEY = "recent_projects"
MAX_RECENT = 10


def recent_projects(settings: QSettings) -> list[str]:
    """Recent project folders, most recent first (missing ones dropped)."""
    value = settings.value(RECENT_KEY, [])
    items = [value] if isinstance(value, str) else list(value or [])
    return [p for p in items if (Path(p) / "project.db").is_file()]


def remember_project(settings: QSettings, path: str | Path) -> None:
    """Put a project folder first in the recent list."""
    p = str(Path(path).resolve())
    items = [x for x in recent_projects(settings) if x != p]
    settings.setValue(RECENT_KEY, [p, *items][:MAX_RECENT])


class StartPage(QWidget):
    """Choices when no project is open.

    Signals
    -------
    open_requested(str):
        A project folder or a dataset (folder or COCO json) to open.
    demo_requested():
        Open the built-in demo.
    """

    open_requested = Signal(str)
    demo_requested = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("start_page")
        self.settings = settings
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        title = QLabel("fusereview")
        title.setObjectName("start_title")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(title)
        sub = QLabel("Review SAM3 predictions, correct them into COCO annotations, retrain.")
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(sub)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.open_dataset = QPushButton("Open dataset…")
        self.open_project = QPushButton("Open project…")
        self.open_demo = QPushButton("Open demo")
        for b in (self.open_dataset, self.open_project, self.open_demo):
            b.setMinimumWidth(140)
            buttons.addWidget(b)
        buttons.addStretch(1)
        outer.addLayout(buttons)

        outer.addWidget(QLabel("Recent projects"), 0, Qt.AlignmentFlag.AlignHCenter)
        self.recent = QListWidget()
        self.recent.setMaximumWidth(640)
        outer.addWidget(self.recent, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        self.reload()

        self.open_dataset.clicked.connect(self._choose_dataset)
        self.open_project.clicked.connect(self._choose_project)
        self.open_demo.clicked.connect(self.demo_requested.emit)
        self.recent.itemActivated.connect(lambda item: self.open_requested.emit(item.text()))

    def reload(self) -> None:
        """Re-read the recent list."""
        self.recent.clear()
        for p in recent_projects(self.settings):
            self.recent.addItem(QListWidgetItem(p))
        if self.recent.count() == 0:
            self.recent.addItem(QListWidgetItem("(none yet)"))
            self.recent.item(0).setFlags(Qt.ItemFlag.NoItemFlags)

    def _choose_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a COCO / Roboflow dataset folder")
        if path:
            self.open_requested.emit(path)

    def _choose_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a fusereview project folder")
        if path:
            self.open_requested.emit(path)
