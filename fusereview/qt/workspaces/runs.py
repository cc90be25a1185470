"""The Train and Evaluate workspaces: the training and evaluation panels, built when first shown.

Both panels import pyqtgraph and read every prediction of the project; building them only when
their workspace is first opened keeps opening a large project instant.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from fusereview.core.project import Project


class _LazyWorkspace(QWidget):
    """A workspace whose panel is built the first time it is shown with a project."""

    placeholder_text = "Open a project first (File ▸ Open)."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(6, 6, 6, 6)
        self.placeholder = QLabel(self.placeholder_text)
        self.placeholder.setObjectName("workspace_placeholder")
        self.layout_.addWidget(self.placeholder)
        self.panel: Any = None
        self.project: Project | None = None

    def set_active(self, active: bool) -> None:
        """Build the panel the first time the workspace is shown with a project."""
        if active and self.panel is None and self.project is not None:
            # building takes about half a second the first time (pyqtgraph, the plots): say so
            QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                self.panel = self.build(self.project)
            finally:
                QGuiApplication.restoreOverrideCursor()
            from fusereview.qt.gc_guard import settle

            settle()  # pyqtgraph and the panel's modules stay: out of the collector's walks
            self.placeholder.hide()
            self.layout_.addWidget(self.panel, 1)

    def build(self, project: Project) -> Any:
        raise NotImplementedError

    def drop_panel(self) -> None:
        if self.panel is not None:
            self.layout_.removeWidget(self.panel)
            self.panel.deleteLater()
            self.panel = None
        self.placeholder.show()


class TrainWorkspace(_LazyWorkspace):
    """Retrain with a preset, watch the live plots, stop / resume, open any run folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("train_workspace")
        self.model_spec: str | None = None
        self.on_run_finished: Any = None

    def set_project(self, project: Project | None, model_spec: str | None) -> None:
        """The project to train on and the model a run starts from."""
        if project is not self.project:
            self.shutdown()
        self.project = project
        self.model_spec = model_spec
        if self.panel is not None and project is not None:
            self.panel.set_project(project.root, model_spec)

    def build(self, project: Project) -> Any:
        from fusereview.qt.panels.training import TrainingPanel

        panel = TrainingPanel()
        panel.set_project(project.root, self.model_spec)
        if self.on_run_finished is not None:
            panel.run_finished.connect(self.on_run_finished)
        return panel

    def shutdown(self) -> None:
        """Stop a running training (it saves a resumable checkpoint) and drop the panel."""
        if self.panel is not None:
            self.panel.shutdown()
        self.drop_panel()


class EvaluateWorkspace(_LazyWorkspace):
    """COCO metrics, the precision-recall curve, images sorted by errors, comparisons of models."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluate_workspace")
        self.connect_panel: Any = None

    def set_project(self, project: Project | None) -> None:
        """The project whose predictions are evaluated."""
        if project is not self.project:
            self.shutdown()
        self.project = project
        if self.panel is not None and project is not None:
            self.panel.set_project(project)

    def build(self, project: Project) -> Any:
        from fusereview.qt.panels.evaluation import EvaluationPanel

        panel = EvaluationPanel(project)
        if self.connect_panel is not None:
            self.connect_panel(panel)
        return panel

    def shutdown(self) -> None:
        """Wait for a running evaluation (its closeEvent does) and drop the panel."""
        if self.panel is not None:
            self.panel.close()
        self.drop_panel()
