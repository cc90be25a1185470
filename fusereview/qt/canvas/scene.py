"""The canvas scene: one photo, its mask layer, its overlays and the active correction tool.

Photos are decoded and reduced in a background thread (:class:`FrameCache`), so that the next
photo is usually ready before the reviewer asks for it; the mask layer of the next photo is
prepared there too. The scene keeps no review state of its own: it shows a
:class:`~fusereview.qt.canvas.render.RenderContext` built from the project by
:func:`build_context`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPen
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
)

from fusereview.core.geometry import segmentation_to_rle
from fusereview.core.records import ReviewState
from fusereview.qt.canvas.items import LodImageItem, OverlayItem, PreviewItem, SelectionItem
from fusereview.qt.canvas.render import (
    DIMMED_MASK_OPACITY,
    Key,
    Layers,
    Overlay,
    RenderContext,
    mask_layer,
    overview_step,
    selection_image,
    visible_overlays,
)

if TYPE_CHECKING:
    from fusereview.core.project import Project
    from fusereview.qt.canvas.tools import Tool

OVERVIEW_MAX_SIDE = 1600  # about a screen: drawing it scaled stays cheap


class LazyImage:
    """Builds an image the first time it is asked for, then keeps it (GUI thread only)."""

    def __init__(self, build: Callable[[], QImage]) -> None:
        self._build: Callable[[], QImage] | None = build
        self._image: QImage | None = None

    def __call__(self) -> QImage:
        if self._image is None:
            assert self._build is not None
            self._image = self._build()
            self._build = None
        return self._image


@dataclass(frozen=True)
class Frame:
    """A decoded photo ready to draw: a reduced overview and the full image (possibly lazy)."""

    image_id: int
    width: int
    height: int
    full: QImage | LazyImage
    overview: QImage
    step: int


_REDUCED_FLAGS = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


def decode_overview(path: Path, width: int, height: int, step: int) -> np.ndarray | None:
    """A JPEG decoded directly at reduced size (4-8x faster than full size then shrinking).

    Returns an RGB array of ``(ceil(h/step), ceil(w/step))``, or ``None`` when the file is not a
    JPEG or the decoder's result does not have the expected size (then the caller decodes fully).
    """
    from fusereview.core.images import (
        ImageDecodeError,
        apply_orientation,
        orientation_to_apply,
        read_image_bytes,
        read_image_header,
    )

    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    factor, flag = next(((f, fl) for f, fl in _REDUCED_FLAGS if f <= step), (1, None))
    if flag is None:
        return None
    try:
        # bytes through the same checks as load_image (a FIFO or /dev/zero is never opened), and
        # EXIF orientation by load_image's rule, not OpenCV's (which rotates square photos too)
        header = read_image_header(path)
        orientation = orientation_to_apply(header, (width, height))
        data = read_image_bytes(path)
    except ImageDecodeError:
        return None  # the full decode reports it
    if orientation is None:
        return None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is not None and orientation != 1:
        bgr = np.ascontiguousarray(apply_orientation(bgr, orientation))
    if (
        bgr is None
        or abs(bgr.shape[1] * factor - width) > factor
        or abs(bgr.shape[0] * factor - height) > factor
    ):
        return None
    size = (-(-width // step), -(-height // step))
    small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def load_frame(image_id: int, path: Path, expected_size: tuple[int, int] | None = None) -> Frame:
    """Decode a photo into a :class:`Frame` (safe to call from a worker thread: no widgets).

    A large JPEG is decoded at reduced size for the overview; its full resolution is decoded
    only when the reviewer zooms in far enough to need it.
    """
    from fusereview.core.images import load_image, read_image_size
    from fusereview.qt.canvas.render import rgb_to_qimage

    w, h = expected_size if expected_size is not None else read_image_size(path)
    step = overview_step(w, h, OVERVIEW_MAX_SIDE)
    small = decode_overview(path, w, h, step) if step > 1 else None
    if small is not None:
        full: QImage | LazyImage = LazyImage(lambda: rgb_to_qimage(load_image(path, expected_size=(w, h))))
        return Frame(image_id, w, h, full, rgb_to_qimage(small), step)
    rgb = load_image(path, expected_size=expected_size)
    h, w = rgb.shape[:2]
    step = overview_step(w, h, OVERVIEW_MAX_SIDE)
    full = rgb_to_qimage(rgb)
    if step == 1:
        return Frame(image_id, w, h, full, full, 1)
    small = cv2.resize(rgb, (-(-w // step), -(-h // step)), interpolation=cv2.INTER_AREA)
    return Frame(image_id, w, h, full, rgb_to_qimage(small), step)


def context_signature(ctx: RenderContext) -> tuple[Any, ...]:
    """A hashable summary of what the mask layer of a context depends on."""
    parts: list[Any] = [ctx.width, ctx.height, ctx.layers.masks, ctx.layers.predictions, ctx.layers.gt]
    for ov in visible_overlays(ctx):
        if ov.mask is not None:
            parts.append((ov.key, ov.state, str(ov.mask["counts"])))
    return tuple(parts)


class FrameCache:
    """Decoded photos and mask layers, built in one background thread, least recently used dropped.

    Parameters
    ----------
    capacity:
        How many photos to keep (a 4000x3000 photo costs about 60 MB here).
    """

    def __init__(self, capacity: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusereview-frames")
        self._frames: OrderedDict[int, Future[Frame]] = OrderedDict()
        self._masks: OrderedDict[tuple[Any, ...], Future[QImage]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def frame(self, image_id: int, path: Path, size: tuple[int, int] | None = None) -> Frame:
        """The decoded photo (waits if it is still being prepared; raises its decode error)."""
        return self.prefetch(image_id, path, size).result()

    def prefetch(self, image_id: int, path: Path, size: tuple[int, int] | None = None) -> Future[Frame]:
        """Start decoding a photo in the background unless it is cached or under way."""
        with self._lock:
            fut = self._frames.get(image_id)
            if fut is None:
                fut = self._pool.submit(load_frame, image_id, path, size)
                self._frames[image_id] = fut
            self._frames.move_to_end(image_id)
            while len(self._frames) > self._capacity:
                self._frames.popitem(last=False)
        return fut

    def mask_overview(self, ctx: RenderContext, step: int) -> QImage:
        """The mask layer of a context at ``step`` (cached by what it depends on)."""
        return self.prefetch_mask(ctx, step).result()

    def prefetch_mask(self, ctx: RenderContext, step: int) -> Future[QImage]:
        """Start building a mask layer in the background unless it is cached."""
        key = (step, *context_signature(ctx))
        with self._lock:
            fut = self._masks.get(key)
            if fut is None:
                fut = self._pool.submit(mask_layer, ctx, step)
                self._masks[key] = fut
            self._masks.move_to_end(key)
            while len(self._masks) > 4 * self._capacity:
                self._masks.popitem(last=False)
        return fut

    def clear(self) -> None:
        """Forget everything (the project changed)."""
        with self._lock:
            self._frames.clear()
            self._masks.clear()

    def shutdown(self) -> None:
        """Stop the background thread (pending work is dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _prediction_geometry(pred: Any, ann: Any | None) -> tuple[tuple[float, float, float, float], Any]:
    """Box (xyxy) and mask to show for a prediction: its annotation's once reviewed (may be edited)."""
    if ann is None:
        return tuple(pred.box), pred.mask
    x, y, w, h = ann.bbox
    if ann.box_only:
        return (x, y, x + w, y + h), None
    if isinstance(ann.segmentation, dict):
        return (x, y, x + w, y + h), ann.segmentation
    h_img, w_img = (pred.mask or {}).get("size") or (None, None)
    if h_img is None:
        return (x, y, x + w, y + h), None
    return (x, y, x + w, y + h), segmentation_to_rle(ann.segmentation, h_img, w_img)


def _selection_signature(ctx: RenderContext) -> tuple[Any, ...]:
    sel = next((o for o in ctx.overlays if o.key == ctx.selected), None)
    mask = None if sel is None or sel.mask is None else str(sel.mask["counts"])
    return (ctx.selected, mask, ctx.layers.masks, ctx.layers.predictions, ctx.layers.gt, ctx.threshold)


def prediction_note(pred: Any, ann: Any | None, mask: Any) -> str:
    """The tag of a prediction on the canvas: box only, and the annotation it matches."""
    parts = []
    if mask is None:
        parts.append("box only")
    if ann is None and pred.matched and ReviewState(pred.state) is ReviewState.PENDING:
        kind = "=" if pred.match_kind == "match" else "repeats"
        parts.append(f"{kind} #{pred.match_annotation_id}")
    return " · ".join(parts)


def build_context(
    project: Project,
    image_id: int,
    *,
    layers: Layers | None = None,
    threshold: float = 0.0,
    selected: Key | None = None,
    model: str | None = None,
) -> RenderContext:
    """Read one image's annotations and predictions from the project into a render context.

    Predictions that were accepted show their annotation's geometry (so an edit is visible); an
    accepted prediction that *agreed* with an annotation is not drawn (the annotation is the
    object; it is tagged "agreed"). Annotations not made by a decision are shown as ground
    truth (``"gt"``) or, when drawn by the reviewer, as edited. Pending predictions that match
    an annotation are tagged with it ("= ann 74").
    """
    img = project.image(image_id)
    categories = project.categories()
    cats = {c.id: c.name for c in categories}
    # one category: its name on every tag says nothing; ids let "= #74" be found on the photo
    named = len(categories) > 1
    anns = {a.id: a for a in project.annotations(image_id=image_id)}
    overlays: list[Overlay] = []
    linked: set[int] = set()
    agreed: set[int] = set()
    for p in project.predictions(image_id=image_id, model=model):
        if p.agrees_with is not None:
            agreed.add(p.agrees_with)
            continue
        ann = anns.get(p.annotation_id) if p.annotation_id is not None else None
        if ann is not None:
            linked.add(ann.id)
        box, mask = _prediction_geometry(p, ann)
        cat = ann.category_id if ann is not None else p.category_id
        overlays.append(
            Overlay(
                ("pred", p.id),
                box,
                ReviewState(p.state).value,
                p.score,
                cats.get(cat, str(cat)) if named else "",
                mask,
                note=prediction_note(p, ann, mask),
            )
        )
    for a in anns.values():
        if a.id in linked:
            continue
        x, y, w, h = a.bbox
        polys: tuple[tuple[float, ...], ...] = ()
        mask = None
        if isinstance(a.segmentation, list):
            polys = tuple(tuple(float(v) for v in p) for p in a.segmentation if len(p) >= 6)
        elif isinstance(a.segmentation, dict):
            mask = a.segmentation
        state = "gt" if a.source == "gt" else "edited"
        notes = (["box only"] if a.box_only else []) + (["agreed"] if a.id in agreed else [])
        overlays.append(
            Overlay(
                ("gt", a.id),
                (x, y, x + w, y + h),
                state,
                None,
                f"#{a.id} {cats.get(a.category_id, '?')}" if named else f"#{a.id}",
                mask,
                polys,
                note=" · ".join(notes),
            )
        )
    # pending last, so that what still needs a decision is drawn on top
    overlays.sort(key=lambda o: (o.key[0] == "pred", o.state == "pending", -(o.score or 0.0)))
    return RenderContext(img.width, img.height, tuple(overlays), layers or Layers(), threshold, selected)


class CanvasScene(QGraphicsScene):
    """The scene: photo, masks, overlays, tool preview; forwards the mouse to the active tool.

    Signals
    -------
    selection_changed(object):
        The selected overlay key, or ``None``.
    """

    selection_changed = Signal(object)

    def __init__(self, cache: FrameCache | None = None) -> None:
        super().__init__()
        self.cache = cache or FrameCache()
        self.image_item = LodImageItem(smooth=True)
        self.mask_item = LodImageItem(smooth=False)
        self.selection_item = SelectionItem()
        self.overlay_item = OverlayItem()
        self.preview = PreviewItem()
        for z, item in enumerate((self.image_item, self.mask_item, self.selection_item, self.overlay_item)):
            item.setZValue(z)
            self.addItem(item)
        self.addItem(self.preview)
        self.frame: Frame | None = None
        self.ctx = RenderContext(0, 0)
        self.tool: Tool | None = None
        self.error_items: list[QGraphicsRectItem] = []
        self._selection_signature: tuple[Any, ...] = ()
        self.setBackgroundBrush(QColor(40, 40, 44))

    @property
    def image_id(self) -> int | None:
        """The photo shown (``None`` before any)."""
        return None if self.frame is None else self.frame.image_id

    def show_errors(self, marks: list[tuple[tuple[float, float, float, float], str, str]]) -> None:
        """Outline an evaluation's errors on the photo shown: ``(bbox xywh, "#rrggbb", label)`` each.

        Dashed, above the review overlays and outside the review state (they are not annotations
        and cannot be selected); the next photo clears them.
        """
        self.clear_errors()
        texts = []
        for (x, y, w, h), colour, label in marks:
            pen = QPen(QColor(colour), 3, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)  # the same width at every zoom
            rect = QGraphicsRectItem(QRectF(x, y, w, h))
            rect.setPen(pen)
            rect.setZValue(3.5)
            self.addItem(rect)
            self.error_items.append(rect)
            c = QColor(colour)
            texts.append(((x, y, x + w, y + h), (c.red(), c.green(), c.blue()), label))
        # the texts go with the overlays' tags, laid out so that none covers another
        self.overlay_item.set_marks(texts)

    def clear_errors(self) -> None:
        """Remove the evaluation's outlines."""
        for item in self.error_items:
            self.removeItem(item)
        self.error_items = []
        self.overlay_item.set_marks(())

    def show_frame(self, frame: Frame, ctx: RenderContext) -> None:
        """Show a photo and its overlays."""
        if self.frame is None or self.frame.image_id != frame.image_id:
            self.clear_errors()
        self.frame = frame
        self.image_item.set_images(frame.width, frame.height, frame.overview, frame.step, frame.full)
        self.setSceneRect(QRectF(0, 0, frame.width, frame.height))
        self.ctx = RenderContext(0, 0)  # force the mask layer to be rebuilt
        self.set_context(ctx)
        if self.tool is not None:
            self.tool.cancel()

    def set_context(self, ctx: RenderContext) -> None:
        """Show new overlays for the current photo (after a decision, an edit, a toggle)."""
        if self.frame is None:
            return
        old = self.ctx
        selection_moved = old.selected != ctx.selected
        self.ctx = ctx
        self.overlay_item.set_context(ctx)
        if context_signature(old) != context_signature(ctx):
            step = self.frame.step
            overview = self.cache.mask_overview(ctx, step)
            full: QImage | Callable[[], QImage] = overview if step == 1 else (lambda c=ctx: mask_layer(c, 1))
            self.mask_item.set_images(ctx.width, ctx.height, overview, step, full)
        if selection_moved or self._selection_signature != _selection_signature(ctx):
            self._show_selection(ctx)
        if selection_moved:
            self.selection_changed.emit(ctx.selected)

    def _show_selection(self, ctx: RenderContext) -> None:
        """The selected item's mask in its own colour; the other masks dimmed."""
        self._selection_signature = _selection_signature(ctx)
        shown = selection_image(ctx)
        if shown is None:
            self.selection_item.set_image(None)
        else:
            self.selection_item.set_image(*shown)
        self.mask_item.setOpacity(DIMMED_MASK_OPACITY if ctx.selected is not None else 1.0)

    def select(self, key: Key | None) -> None:
        """Select an overlay (``None`` clears the selection)."""
        self.set_context(self.ctx.with_selected(key))

    def hover(self, key: Key | None) -> None:
        """The item under the mouse (its label is shown even where others crowd)."""
        if key != self.ctx.hovered:
            self.ctx = self.ctx.with_hovered(key)
            self.overlay_item.set_context(self.ctx)

    def overlay(self, key: Key | None) -> Overlay | None:
        """The overlay with this key in the current context."""
        for ov in self.ctx.overlays:
            if ov.key == key:
                return ov
        return None

    def set_tool(self, tool: Tool | None) -> None:
        """Make ``tool`` handle the mouse (the previous one is cancelled)."""
        if self.tool is not None:
            self.tool.cancel()
        self.tool = tool
        self.preview.clear()

    # the active tool gets the mouse; the view handles pan and zoom before it gets here
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.tool is not None and self.frame is not None:
            self.tool.press(event.scenePos(), event)
            event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.tool is not None and self.frame is not None:
            self.tool.move(event.scenePos(), event)
            event.accept()

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.tool is not None and self.frame is not None:
            self.tool.release(event.scenePos(), event)
            event.accept()

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.tool is not None and self.frame is not None:
            self.tool.double_click(event.scenePos(), event)
            event.accept()


def empty_mask(width: int, height: int) -> np.ndarray:
    """An all-false mask of a photo's size (what a brush paints into when there is none yet)."""
    return np.zeros((height, width), dtype=bool)
