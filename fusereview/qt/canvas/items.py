"""The few graphics items of the canvas: the photo, the mask layer, the overlays, a tool preview.

A photo with 50 predictions is four items, not hundreds: boxes and labels are painted by
:func:`~fusereview.qt.canvas.render.paint_overlays`, masks are one image per photo.
Large photos are drawn from a reduced overview while zoomed out (drawing 12 megapixels scaled
down on every paint is what makes big photos sluggish) and from the full image when zoomed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from fusereview.qt.canvas.render import Mark, RenderContext, paint_overlays


class LodImageItem(QGraphicsItem):
    """An image of ``width`` x ``height`` image pixels, drawn from an overview or the full image.

    Parameters
    ----------
    smooth:
        Smooth scaling (photos); masks use nearest so their edges stay crisp.
    """

    def __init__(self, smooth: bool = True) -> None:
        super().__init__()
        self._w = 0
        self._h = 0
        self._overview: QImage | None = None
        self._step = 1
        self._full: QImage | None = None
        self._full_factory: Callable[[], QImage] | None = None
        self._smooth = smooth
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_images(
        self,
        width: int,
        height: int,
        overview: QImage | None,
        step: int,
        full: QImage | Callable[[], QImage] | None,
    ) -> None:
        """Show new images; ``full`` may be a callable that builds the full image when first needed."""
        if (width, height) != (self._w, self._h):
            self.prepareGeometryChange()
        self._w, self._h = width, height
        self._overview, self._step = overview, step
        if callable(full):
            self._full, self._full_factory = None, full
        else:
            self._full, self._full_factory = full, None
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._w, self._h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._overview is None and self._full is None and self._full_factory is None:
            return
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        target = QRectF(0, 0, self._w, self._h)
        if self._step > 1 and self._overview is not None and lod * self._step <= 1.25:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth and lod < 1)
            painter.drawImage(target, self._overview)
            return
        full = self._full_image()
        if full is None:
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth and lod < 1)
        exposed = option.exposedRect.intersected(target).toAlignedRect()
        painter.drawImage(QRectF(exposed), full, QRectF(exposed))

    def _full_image(self) -> QImage | None:
        if self._full is None and self._full_factory is not None:
            self._full = self._full_factory()
            self._full_factory = None
        return self._full if self._full is not None else self._overview


class OverlayItem(QGraphicsItem):
    """Boxes, polygons, scores and handles of one image, painted from a render context."""

    def __init__(self) -> None:
        super().__init__()
        self.ctx = RenderContext(0, 0)
        self.marks: tuple[Mark, ...] = ()

    def set_marks(self, marks: Sequence[Mark]) -> None:
        """The texts of the scene's outlines, laid out with the tags (see ``layout_labels``)."""
        self.marks = tuple(marks)
        self.update()

    def set_context(self, ctx: RenderContext) -> None:
        """Show another context (same photo or a new one)."""
        if (ctx.width, ctx.height) != (self.ctx.width, self.ctx.height):
            self.prepareGeometryChange()
        self.ctx = ctx
        self.update()

    def boundingRect(self) -> QRectF:
        # labels sit above the box; keep them inside the repaint area
        return QRectF(-10, -40, self.ctx.width + 200, self.ctx.height + 60)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        paint_overlays(painter, self.ctx, pixel_size=1.0 / max(lod, 1e-6), marks=self.marks)


class SelectionItem(QGraphicsItem):
    """The selected item's mask, drawn over the (dimmed) mask layer in the selection colour."""

    def __init__(self) -> None:
        super().__init__()
        self._image: QImage | None = None
        self._rect = QRectF()

    def set_image(self, image: QImage | None, rect: QRectF | None = None) -> None:
        """Show a premultiplied ARGB image in ``rect`` of the photo (``None`` hides it)."""
        self.prepareGeometryChange()
        self._image = image
        self._rect = rect or QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._rect)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
            painter.drawImage(self._rect, self._image)


class PreviewItem(QGraphicsItem):
    """What a tool shows while the mouse is down: a box, a polygon, a brush stroke, a cursor ring."""

    def __init__(self) -> None:
        super().__init__()
        self._rect: QRectF | None = None
        self._path: QPainterPath | None = None
        self._image: QImage | None = None
        self._image_rect = QRectF()
        self._color = QColor(255, 255, 0)
        self.setZValue(10)

    def show_rect(self, rect: QRectF | None, color: QColor | None = None) -> None:
        """Show a dashed rectangle (``None`` hides it)."""
        self.prepareGeometryChange()
        self._rect = rect
        if color is not None:
            self._color = color
        self.update()

    def show_path(self, path: QPainterPath | None) -> None:
        """Show a polyline or polygon outline (``None`` hides it)."""
        self.prepareGeometryChange()
        self._path = path
        self.update()

    def show_image(self, image: QImage | None, rect: QRectF | None = None) -> None:
        """Show a (semi-transparent) image in ``rect`` of the photo: a brush stroke in progress."""
        self.prepareGeometryChange()
        self._image = image
        self._image_rect = rect or QRectF()
        self.update()

    def clear(self) -> None:
        """Hide everything."""
        self.prepareGeometryChange()
        self._rect = None
        self._path = None
        self._image = None
        self.update()

    def boundingRect(self) -> QRectF:
        r = QRectF()
        if self._rect is not None:
            r = r.united(self._rect)
        if self._path is not None:
            r = r.united(self._path.boundingRect())
        if self._image is not None:
            r = r.united(self._image_rect)
        return r.adjusted(-4, -4, 4, 4)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is not None:
            painter.drawImage(self._image_rect, self._image)
        pen = QPen(self._color, 0, Qt.PenStyle.DashLine)  # cosmetic: 1 screen pixel at any zoom
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self._rect is not None:
            painter.drawRect(self._rect)
        if self._path is not None:
            painter.drawPath(self._path)
