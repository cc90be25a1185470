"""The canvas view: zoom to the cursor with the wheel, pan with space-drag or the middle button,
fit (F) and 1:1. Everything else the mouse does goes to the scene's active tool."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QWidget

from fusereview.qt.canvas.scene import CanvasScene

MIN_ZOOM = 0.01
MAX_ZOOM = 40.0


class CanvasView(QGraphicsView):
    """A QGraphicsView tuned for large photos.

    Signals
    -------
    zoom_changed(float):
        Screen pixels per image pixel.
    """

    zoom_changed = Signal(float)

    def __init__(self, scene: CanvasScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setObjectName("canvas")
        # Full-viewport updates: the photo fills the view, and partial updates of a scaled
        # 12-megapixel image cost more than one full repaint.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._space = False
        self._panned = False
        self._pan_from: QPoint | None = None
        self._fit_mode = True

    def canvas(self) -> CanvasScene:
        """The scene, typed."""
        scene = self.scene()
        assert isinstance(scene, CanvasScene)
        return scene

    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole photo (F); stays fitted when the window is resized."""
        self._fit_mode = True
        rect = self.sceneRect()
        if rect.width() > 0 and rect.height() > 0:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        """One image pixel per screen pixel (1:1)."""
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float) -> None:
        """Set screen pixels per image pixel, about the mouse."""
        self._fit_mode = False
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        factor = zoom / max(self.zoom, 1e-9)
        self.scale(factor, factor)
        self.zoom_changed.emit(self.zoom)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        self.set_zoom(self.zoom * (1.25**steps))
        event.accept()

    def space_down(self) -> None:
        """Space pressed: a left drag now pans (the window decides what a tap of Space means)."""
        self._space = True
        self._panned = False
        self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)

    def space_up(self) -> bool:
        """Space released; returns whether it was used to pan (so it was not a tap)."""
        panned = self._space and self._panned
        self._space = False
        self._pan_from = None
        self.viewport().unsetCursor()
        return panned

    def keyPressEvent(self, event: QKeyEvent) -> None:
        tool = self.canvas().tool
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and tool is not None:
            tool.finish()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and tool is not None:
            tool.cancel()
            event.accept()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            pos = event.position().toPoint()
            delta = pos - self._pan_from
            self._pan_from = pos
            self._panned = True
            self._fit_mode = False
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            if self._space:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)
