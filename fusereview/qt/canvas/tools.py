"""Correction tools: what the mouse does on the canvas.

A tool turns a press-drag-release into *one* request to its host (the review controller), which
makes it one undo command: a whole drag or brush stroke is undone at once. Tools keep only the
gesture in progress; the geometry they start from comes from the scene's render context.

Tools
-----
- :class:`SelectTool`: click to select; drag a box by its 8 handles or its inside; drag polygon
  vertices, Shift+click on an edge to insert one, Ctrl+click on a vertex to delete it.
- :class:`BrushTool`: paint (or erase) the selected item's mask with a round brush.
- :class:`BoxTool`: draw a new box (a missed object), or a box prompt for SAM3 refine.
- :class:`PolygonTool`: click vertices, double-click or Enter to close.
- :class:`ClickTool`: click to segment with SAM3's interactive head (left: object, right: background),
  the mask updating after each click in the background; Enter accepts, Escape discards.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

from fusereview.qt.canvas.render import Key, Overlay, drag_box, handle_rects, hit_test

if TYPE_CHECKING:
    from fusereview.core.records import RLE
    from fusereview.qt.canvas.scene import CanvasScene

Box = tuple[float, float, float, float]


class ToolHost(Protocol):
    """What a tool asks for when a gesture ends (implemented by the review controller)."""

    def edit_box(self, key: Key, box: Box) -> None: ...
    def edit_mask(self, key: Key, mask: RLE) -> None: ...
    def edit_polygons(self, key: Key, polygons: list[list[float]]) -> None: ...
    def add_box(self, box: Box) -> None: ...
    def add_polygon(self, polygon: list[float]) -> None: ...
    def refine(self, box: Box) -> None: ...
    def say(self, text: str) -> None: ...


class Tool:
    """Base class: ignores everything."""

    name = "tool"

    def __init__(self, scene: CanvasScene, host: ToolHost) -> None:
        self.scene = scene
        self.host = host

    def press(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        """Mouse button pressed at ``pos`` (image pixels)."""

    def move(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        """Mouse moved (button down or not)."""

    def release(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        """Mouse button released: the gesture ends here."""

    def double_click(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        """Double click."""

    def finish(self) -> None:
        """Enter pressed (closes a polygon)."""

    def cancel(self) -> None:
        """Drop the gesture in progress (Escape, or another photo)."""
        self.scene.preview.clear()

    def _pixel(self) -> float:
        """One screen pixel in image pixels (for grab distances that feel the same at any zoom)."""
        views = self.scene.views()
        if not views:
            return 1.0
        return 1.0 / max(views[0].transform().m11(), 1e-6)


class SelectTool(Tool):
    """Select; move and resize boxes; drag, insert and delete polygon vertices."""

    name = "select"

    def __init__(self, scene: CanvasScene, host: ToolHost) -> None:
        super().__init__(scene, host)
        self._drag: str | None = None  # handle name, "move", or "vertex"
        self._start = QPointF()
        self._box: Box | None = None
        self._vertex: tuple[int, int] | None = None
        self._polys: list[list[float]] = []

    def press(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        ctx = self.scene.ctx
        sel = self.scene.overlay(ctx.selected)
        grab = 6 * self._pixel()
        if sel is not None:
            if sel.polygons and self._press_polygon(sel.key, sel.polygons, pos, event, grab):
                return
            for name, rect in handle_rects(sel.box, 2 * grab).items():
                if rect.contains(pos):
                    self._start_drag(name, pos, sel.box)
                    return
            x0, y0, x1, y1 = sel.box
            if x0 <= pos.x() <= x1 and y0 <= pos.y() <= y1 and hit_test(ctx, pos.x(), pos.y()) == sel.key:
                self._start_drag("move", pos, sel.box)
                return
        self.scene.select(hit_test(ctx, pos.x(), pos.y()))

    def _start_drag(self, what: str, pos: QPointF, box: Box) -> None:
        self._drag, self._start, self._box = what, QPointF(pos), box

    def _press_polygon(
        self,
        key: Key,
        polygons: tuple[tuple[float, ...], ...],
        pos: QPointF,
        event: QGraphicsSceneMouseEvent,
        grab: float,
    ) -> bool:
        polys = [list(p) for p in polygons]
        mods = event.modifiers()
        hit = nearest_vertex(polys, pos.x(), pos.y(), grab)
        if hit is not None and mods & Qt.KeyboardModifier.ControlModifier:
            pi, vi = hit
            if len(polys[pi]) > 6:  # a polygon keeps at least 3 vertices
                del polys[pi][2 * vi : 2 * vi + 2]
                self.host.edit_polygons(key, polys)
            return True
        if hit is None and mods & Qt.KeyboardModifier.ShiftModifier:
            edge = nearest_edge(polys, pos.x(), pos.y(), grab)
            if edge is not None:
                pi, vi = edge
                polys[pi][2 * vi + 2 : 2 * vi + 2] = [pos.x(), pos.y()]
                self.host.edit_polygons(key, polys)
                return True
        if hit is not None:
            self._drag, self._vertex, self._polys = "vertex", hit, polys
            return True
        return False

    def move(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is None:
            self.scene.hover(hit_test(self.scene.ctx, pos.x(), pos.y()))
            return
        if self._drag == "vertex" and self._vertex is not None:
            pi, vi = self._vertex
            self._polys[pi][2 * vi] = pos.x()
            self._polys[pi][2 * vi + 1] = pos.y()
            self.scene.preview.show_path(polygons_path(self._polys))
            return
        box = self._dragged(pos)
        self.scene.preview.show_rect(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1]))

    def _dragged(self, pos: QPointF, drag: str | None = None) -> Box:
        drag = drag or self._drag
        assert self._box is not None and drag is not None
        d = pos - self._start
        return drag_box(self._box, drag, d.x(), d.y(), self.scene.ctx.width, self.scene.ctx.height)

    def release(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        drag, self._drag = self._drag, None
        self.scene.preview.clear()
        key = self.scene.ctx.selected
        if drag is None or key is None:
            return
        if drag == "vertex":
            self.host.edit_polygons(key, self._polys)
            return
        box = self._dragged(pos, drag)
        if box != self._box and box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
            self.host.edit_box(key, box)

    def cancel(self) -> None:
        self._drag = None
        super().cancel()


class BrushTool(Tool):
    """Paint (``erase=False``) or erase the selected item's mask; one stroke = one edit."""

    name = "brush"

    def __init__(self, scene: CanvasScene, host: ToolHost, erase: bool = False, radius: int = 8) -> None:
        super().__init__(scene, host)
        self.erase = erase
        self.radius = radius
        self._stroke: np.ndarray | None = None
        self._last: tuple[int, int] | None = None
        self._key: Key | None = None

    def press(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        ctx = self.scene.ctx
        if event.button() != Qt.MouseButton.LeftButton or ctx.selected is None:
            return
        self._key = ctx.selected
        self._stroke = np.zeros((ctx.height, ctx.width), dtype=np.uint8)
        self._last = None
        self._paint(pos)

    def move(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        if self._stroke is not None:
            self._paint(pos)

    def _paint(self, pos: QPointF) -> None:
        assert self._stroke is not None
        p = (round(pos.x()), round(pos.y()))
        if self._last is None:
            cv2.circle(self._stroke, p, self.radius, 1, -1)
        else:
            cv2.line(self._stroke, self._last, p, 1, 2 * self.radius + 1)
        self._last = p
        self.scene.preview.show_image(*stroke_preview(self._stroke, self.erase))

    def release(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        stroke, key = self._stroke, self._key
        self._stroke, self._key = None, None
        self.scene.preview.clear()
        if stroke is None or key is None:
            return
        from fusereview.core.geometry import mask_to_rle

        ov = self.scene.overlay(key)
        if ov is None:
            return
        # a polygon label is painted on as the pixels it shows (starting from nothing replaced the
        # whole polygon by the stroke); a box-only item has no pixels yet
        shown = item_pixels(ov, self.scene.ctx.width, self.scene.ctx.height)
        base = shown if shown is not None else np.zeros(stroke.shape, dtype=bool)
        new = base & ~stroke.astype(bool) if self.erase else base | stroke.astype(bool)
        if np.array_equal(new, base):  # a stroke that changes nothing must not pass in silence
            self.host.say(
                "box only: no mask to erase (the brush paints one; O makes an item box only)"
                if shown is None
                else f"the {'eraser' if self.erase else 'brush'} stroke changed no pixel: nothing changed"
            )
            return
        self.host.edit_mask(key, mask_to_rle(new))

    def cancel(self) -> None:
        self._stroke = None
        super().cancel()


def item_pixels(ov: Overlay, width: int, height: int) -> np.ndarray | None:
    """The pixels an item shows: its mask, or its polygons rasterised; ``None`` when box only."""
    from fusereview.core.geometry import polygons_to_rle, rle_to_mask

    if ov.mask is not None:
        return rle_to_mask(ov.mask)
    if ov.polygons:
        return rle_to_mask(polygons_to_rle([list(p) for p in ov.polygons], height, width))
    return None


def stroke_preview(stroke: np.ndarray, erase: bool) -> tuple[QImage, QRectF]:
    """A semi-transparent image of the painted part of a stroke and where it goes."""
    ys, xs = np.nonzero(stroke)
    if len(xs) == 0:
        return QImage(), QRectF()
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    crop = stroke[y0:y1, x0:x1]
    color = np.uint32(0x80800000 if erase else 0x8000A0FF)  # premultiplied ARGB: red / light blue
    pixels = np.where(crop > 0, color, np.uint32(0)).astype(np.uint32)
    h, w = pixels.shape
    img = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()
    return img, QRectF(float(x0), float(y0), float(w), float(h))


class BoxTool(Tool):
    """Drag a new box: a missed object (``refine=False``) or a SAM3 box prompt (``refine=True``)."""

    name = "box"

    def __init__(self, scene: CanvasScene, host: ToolHost, refine: bool = False) -> None:
        super().__init__(scene, host)
        self.refine = refine
        self._start: QPointF | None = None

    def press(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._start = QPointF(pos)

    def move(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        if self._start is not None:
            color = QColor(60, 160, 255) if self.refine else QColor(255, 255, 0)
            self.scene.preview.show_rect(QRectF(self._start, pos).normalized(), color)

    def release(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        start, self._start = self._start, None
        self.scene.preview.clear()
        if start is None:
            return
        w, h = self.scene.ctx.width, self.scene.ctx.height
        x0, x1 = sorted((min(max(start.x(), 0), w), min(max(pos.x(), 0), w)))
        y0, y1 = sorted((min(max(start.y(), 0), h), min(max(pos.y(), 0), h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return  # a click, not a box
        box = (x0, y0, x1, y1)
        if self.refine:
            self.host.refine(box)
        else:
            self.host.add_box(box)

    def cancel(self) -> None:
        self._start = None
        super().cancel()


class PolygonTool(Tool):
    """Click vertices of a new polygon; double-click or Enter closes it (3 vertices at least)."""

    name = "polygon"

    def __init__(self, scene: CanvasScene, host: ToolHost) -> None:
        super().__init__(scene, host)
        self.points: list[float] = []

    def press(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.points += [pos.x(), pos.y()]
            self.scene.preview.show_path(polygons_path([self.points], closed=False))

    def double_click(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        self.finish()

    def finish(self) -> None:
        pts, self.points = self.points, []
        self.scene.preview.clear()
        # a double click also sends a press: drop the repeated last vertex
        while len(pts) >= 4 and math.dist(pts[-2:], pts[-4:-2]) < 1:
            del pts[-2:]
        if len(pts) >= 6:
            self.host.add_polygon(pts)

    def cancel(self) -> None:
        self.points = []
        super().cancel()


def polygons_path(polys: list[list[float]], closed: bool = True) -> QPainterPath:
    """A painter path through polygon vertices (flat ``x, y`` lists)."""
    path = QPainterPath()
    for p in polys:
        if len(p) < 2:
            continue
        path.moveTo(p[0], p[1])
        for i in range(2, len(p) - 1, 2):
            path.lineTo(p[i], p[i + 1])
        if closed:
            path.closeSubpath()
    return path


def nearest_vertex(polys: list[list[float]], x: float, y: float, radius: float) -> tuple[int, int] | None:
    """``(polygon, vertex)`` index of the vertex within ``radius`` of a point, nearest first."""
    best: tuple[float, tuple[int, int]] | None = None
    for pi, p in enumerate(polys):
        for vi in range(len(p) // 2):
            d = math.hypot(p[2 * vi] - x, p[2 * vi + 1] - y)
            if d <= radius and (best is None or d < best[0]):
                best = (d, (pi, vi))
    return None if best is None else best[1]


def nearest_edge(polys: list[list[float]], x: float, y: float, radius: float) -> tuple[int, int] | None:
    """``(polygon, first vertex)`` of the edge within ``radius`` of a point."""
    best: tuple[float, tuple[int, int]] | None = None
    for pi, p in enumerate(polys):
        n = len(p) // 2
        for vi in range(n):
            ax, ay = p[2 * vi], p[2 * vi + 1]
            bx, by = p[(2 * vi + 2) % (2 * n)], p[(2 * vi + 3) % (2 * n)]
            d = _segment_distance(x, y, ax, ay, bx, by)
            if d <= radius and (best is None or d < best[0]):
                best = (d, (pi, vi))
    return None if best is None else best[1]


def _segment_distance(x: float, y: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy))


class ClickHost(ToolHost, Protocol):
    """What the Click tool needs beyond a tool host: the image shown, its file, and the accept step."""

    image_id: int | None

    def click_image_path(self) -> Any: ...
    def accept_click_mask(self, mask: RLE, target: Key | None) -> bool: ...


class ClickTool(Tool):
    """Click to segment: SAM3's interactive head turns positive and negative clicks into a mask.

    Left click adds a point on the object, right click one on the background; after each click the
    mask is computed again in the background (a :class:`~fusereview.qt.workers.ClickJob`; clicks made
    meanwhile are sent together when it ends) and shown over the photo with the points. Enter hands
    the mask to the host, which makes it one undoable command: a new annotation of the current
    category, or, when an item was selected at the first click, that item's new mask (the item's mask
    is the head's starting point). Escape, another photo or another tool drop everything.

    Parameters
    ----------
    runner:
        Starts the jobs (the window's :class:`~fusereview.qt.workers.JobRunner`).
    """

    name = "click"
    POSITIVE = QColor(40, 220, 90)
    NEGATIVE = QColor(240, 60, 60)
    MASK = 0x701C4670  # premultiplied ARGB (every channel <= alpha): light blue (40, A0, FF) at 44 %

    def __init__(self, scene: CanvasScene, host: ClickHost, runner: Any) -> None:
        super().__init__(scene, host)
        self.host: ClickHost = host
        self.runner = runner
        self.segmenter: Any = None
        self.unavailable = "no model loaded yet"
        self.points: list[tuple[float, float, int]] = []
        self.target: Key | None = None
        self.result: Any = None
        self.job: Any = None
        self._image_id: int | None = None
        self._key = ""
        self._generation = 0  # bumped by cancel: a result computed for dropped clicks is ignored
        self._dirty = False  # clicks arrived while a job ran
        self._accept_when_done = False

    # -- the model --------------------------------------------------------------------------------
    def set_segmenter(self, segmenter: Any, why: str = "") -> None:
        """Use an interactive segmenter (``None``: the tool is unavailable, ``why`` says why)."""
        self.cancel()
        self.segmenter = segmenter
        self.unavailable = why or "the model has no interactive head"

    # -- gestures ---------------------------------------------------------------------------------
    def press(self, pos: QPointF, event: QGraphicsSceneMouseEvent) -> None:
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        if self.segmenter is None:
            self.host.say(f"Click to segment is unavailable: {self.unavailable}")
            return
        ctx = self.scene.ctx
        if not (0 <= pos.x() < ctx.width and 0 <= pos.y() < ctx.height) or self.host.image_id is None:
            return
        if not self.points:
            self._image_id = self.host.image_id
            self.target = ctx.selected  # refine the selected item, else a new object
            self._key = f"{self._image_id}:{ctx.width}x{ctx.height}"
        self.points.append((pos.x(), pos.y(), 1 if button == Qt.MouseButton.LeftButton else 0))
        self._show()
        self._request()

    def _request(self) -> None:
        """Start a job for the points so far, or mark that one is due when the running one ends."""
        if self.job is not None:
            self._dirty = True
            return
        from fusereview.qt.workers import ClickJob

        logits, mask = None, None
        if self.result is not None:
            logits = self.result.logits
        elif self.target is not None:
            mask = self._target_mask()
        job = ClickJob(
            self.segmenter,
            self._key,
            self.host.click_image_path(),
            self.points,
            mask_logits=logits,
            mask=mask,
        )
        generation = self._generation
        job.finished.connect(lambda r, g=generation, j=job: self._done(j, g, r))
        job.failed.connect(lambda m, g=generation, j=job: self._failed(j, g, m))
        self.job = job
        self._dirty = False
        self.runner.start(job)

    def _target_mask(self) -> np.ndarray | None:
        """The selected item's pixels (its RLE, or its polygons rasterised), the head's starting point."""
        ov = self.scene.overlay(self.target)
        if ov is None:
            return None
        return item_pixels(ov, self.scene.ctx.width, self.scene.ctx.height)  # box only: None

    def _done(self, job: Any, generation: int, result: Any) -> None:
        if job is self.job:
            self.job = None
        if generation != self._generation or self.host.image_id != self._image_id:
            return  # cancelled, or another photo: not this object's mask
        if job.stop_requested:
            self.host.say("click to segment cancelled: nothing changed")
            self.cancel()
            return
        self.result = result
        self._show()
        if self._dirty:
            self._request()
            return
        verb = "refines" if self.target is not None else "adds"
        pos = sum(1 for *_, lab in self.points if lab == 1)
        self.host.say(
            f"click mask: {result.area} px, predicted IoU {result.score:.2f} ({pos} object / "
            f"{len(self.points) - pos} background clicks, {result.seconds * 1000:.0f} ms): Enter {verb} it, Esc discards"
        )
        if self._accept_when_done:
            self.finish()

    def _failed(self, job: Any, generation: int, message: str) -> None:
        if job is self.job:
            self.job = None
        if generation == self._generation:
            self.host.say(f"click to segment failed: {message}: nothing changed")
            self.cancel()

    def finish(self) -> None:
        """Enter: the mask becomes one undoable change (after the running click, if one runs)."""
        if not self.points:
            return
        if self.job is not None or self._dirty:
            self._accept_when_done = True
            self.host.say("segmenting the last click… the mask is accepted when it is ready")
            return
        result, target = self.result, self.target
        if result is None:
            return
        if self.host.accept_click_mask(result.mask, target):
            self.cancel()
        else:
            self._accept_when_done = False  # refused (an empty mask): keep the clicks to fix it

    def cancel(self) -> None:
        """Escape, another photo or tool: drop the clicks and the mask (a running job's result is ignored)."""
        self._generation += 1
        self.points = []
        self.result = None
        self.target = None
        self._dirty = False
        self._accept_when_done = False
        if self.job is not None:
            self.job.request_stop()
            self.job = None
        super().cancel()

    # -- what is shown ----------------------------------------------------------------------------
    def _show(self) -> None:
        self.scene.preview.show_image(
            *click_preview(self.result, self.points, self.scene.ctx, 5 * self._pixel())
        )


def click_preview(
    result: Any, points: list[tuple[float, float, int]], ctx: Any, radius: float
) -> tuple[QImage, QRectF]:
    """The click mask (light blue) with its points (green: object, red: background), cropped to them."""
    from fusereview.core.geometry import rle_to_mask

    mask = rle_to_mask(result.mask) if result is not None and result.area else None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if mask is not None:
        my, mx = np.nonzero(mask)
        xs += [float(mx.min()), float(mx.max() + 1)]
        ys += [float(my.min()), float(my.max() + 1)]
    if not xs:
        return QImage(), QRectF()
    r = math.ceil(radius) + 2
    x0, y0 = max(0, int(min(xs)) - r), max(0, int(min(ys)) - r)
    x1, y1 = min(ctx.width, math.ceil(max(xs)) + r), min(ctx.height, math.ceil(max(ys)) + r)
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    pixels = np.zeros((h, w), dtype=np.uint32)
    if mask is not None:
        pixels[mask[y0:y1, x0:x1]] = np.uint32(ClickTool.MASK)
    img = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()
    painter = QPainter(img)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for x, y, label in points:
        color = ClickTool.POSITIVE if label == 1 else ClickTool.NEGATIVE
        painter.setPen(QPen(QColor(0, 0, 0), max(1.0, radius / 4)))
        painter.setBrush(color)
        painter.drawEllipse(QPointF(x - x0, y - y0), radius, radius)
    painter.end()
    return img, QRectF(float(x0), float(y0), float(w), float(h))
