"""Paint code as pure functions of a frozen render context.

Everything the canvas draws on top of the photo is described by a :class:`RenderContext` (plain,
frozen data built from core records). The functions here turn that context into pixels: the mask
layer as one colourised image per photo (RLE decoded with numpy, never one item per pixel) and the
boxes, scores and handles with a ``QPainter``. Nothing here reads the project, so every function
can be unit-tested with hand-made contexts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen, QPolygonF

from fusereview.core.records import RLE

Key = tuple[str, int]
"""Identifies what an overlay shows: ``("pred", prediction_id)`` or ``("gt", annotation_id)``."""

# State colours (RGB). Chosen to stay distinguishable for the common colour-vision deficiencies:
# pending amber, accepted blue-green, rejected red-purple, edited sky blue, ground truth white.
STATE_COLORS: dict[str, tuple[int, int, int]] = {
    "pending": (255, 176, 0),
    "accepted": (0, 200, 120),
    "rejected": (220, 20, 90),
    "edited": (60, 160, 255),
    "gt": (245, 245, 245),
}
SELECTED_COLOR = (255, 255, 0)
SELECTED_MASK_ALPHA = 0.55
#: Alpha of the other boxes while an item is selected (and the mask layer's opacity, as a share).
DIMMED_ALPHA = 110
DIMMED_MASK_OPACITY = 0.45
# Palette slots of the mask index image (0 = no mask).
_PALETTE_ORDER = ("pending", "accepted", "rejected", "edited", "gt")
#: Mask fill of each prediction: its own colour (by prediction id, so it keeps it), so that
#: neighbouring masks of the same state never read as one blob; boxes and tags keep the state
#: colours. Ten hues that stay apart for the common colour-vision deficiencies (Okabe-Ito and
#: Tableau), none of them the selection's yellow.
INSTANCE_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (148, 103, 189),
    (140, 86, 75),
    (23, 190, 207),
    (188, 189, 34),
)
_INSTANCE_BASE = len(_PALETTE_ORDER) + 2  # after the state slots and the selection slot
MASK_ALPHA = 0.45
HANDLE_NAMES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")


@dataclass(frozen=True)
class Overlay:
    """One thing drawn over the photo: a prediction or an annotation.

    Attributes
    ----------
    key:
        ``("pred", id)`` or ``("gt", id)``.
    box:
        ``(x0, y0, x1, y1)`` in image pixels.
    state:
        ``"gt"`` for annotations, else the prediction's review state value.
    score:
        The model's score (``None`` for annotations).
    label:
        Category name shown next to the box.
    mask:
        COCO RLE at the image size, or ``None``.
    polygons:
        Polygon outlines (flat ``x, y`` lists) for polygon annotations, else empty.
    note:
        A short tag after the label: ``"box only"``, ``"= ann 74"`` (matches an annotation).
    """

    key: Key
    box: tuple[float, float, float, float]
    state: str
    score: float | None = None
    label: str = ""
    mask: RLE | None = None
    polygons: tuple[tuple[float, ...], ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Layers:
    """Which layers are visible (the canvas's layer toggles)."""

    gt: bool = True
    predictions: bool = True
    masks: bool = True
    labels: bool = True


@dataclass(frozen=True)
class RenderContext:
    """Everything needed to draw one image's overlays."""

    width: int
    height: int
    overlays: tuple[Overlay, ...] = ()
    layers: Layers = field(default_factory=Layers)
    threshold: float = 0.0
    selected: Key | None = None
    hovered: Key | None = None

    def with_selected(self, key: Key | None) -> RenderContext:
        """Return a copy with another selection."""
        return replace(self, selected=key)

    def with_hovered(self, key: Key | None) -> RenderContext:
        """Return a copy with another item under the mouse."""
        return replace(self, hovered=key)


def state_color(state: str) -> QColor:
    """Colour of a review state (``"gt"`` for ground truth)."""
    r, g, b = STATE_COLORS.get(state, STATE_COLORS["pending"])
    return QColor(r, g, b)


def visible_overlays(ctx: RenderContext) -> list[Overlay]:
    """The overlays the layer toggles and the score threshold let through, in paint order."""
    out = []
    for ov in ctx.overlays:
        if ov.key[0] == "gt":
            if ctx.layers.gt:
                out.append(ov)
        elif ctx.layers.predictions and (ov.score is None or ov.score >= ctx.threshold):
            out.append(ov)
    return out


# --- masks -------------------------------------------------------------------------------------


def rle_counts(rle: RLE) -> np.ndarray:
    """Run lengths of a COCO RLE (compressed string or uncompressed list), as int64.

    The compressed form is decoded with numpy (the LEB128-like code of pycocotools' ``rleFrString``:
    5 data bits per character, 0x20 continuation, 0x10 sign, then delta coding against the run two
    places back), because decoding whole 12-megapixel masks just to find their runs is far too slow.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, dtype=np.int64)
    raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    if not raw:
        return np.zeros(0, dtype=np.int64)
    c = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    ends = (c & 0x20) == 0
    group = np.concatenate(([0], np.cumsum(ends)[:-1]))  # which number each char belongs to
    first = np.concatenate(([True], ends[:-1]))
    start_idx = np.flatnonzero(first)
    pos = np.arange(len(c)) - start_idx[group]  # position of the char inside its number
    values = np.zeros(int(group[-1]) + 1, dtype=np.int64)
    np.add.at(values, group, (c & 0x1F) << (5 * pos))
    last_chars = c[ends]
    nchars = np.bincount(group)
    negative = (last_chars & 0x10) != 0
    values[negative] |= -1 << (5 * nchars[negative])
    # delta coding: x[m] += x[m-2] for m > 2
    if len(values) > 3:
        values[3::2] = np.cumsum(values[1::2])[1:]
    if len(values) > 4:
        values[4::2] = np.cumsum(values[2::2])[1:]
    return values


def rle_runs(rle: RLE) -> tuple[np.ndarray, np.ndarray]:
    """Foreground runs ``(starts, lengths)`` in column-major (COCO) pixel order."""
    counts = rle_counts(rle)
    ends = np.cumsum(counts)
    starts = ends - counts
    return starts[1::2], counts[1::2]


def mask_index_image(ctx: RenderContext, step: int = 1) -> np.ndarray:
    """Palette index image of the visible masks, sampled every ``step`` pixels.

    Returns an ``(ceil(h/step), ceil(w/step))`` uint8 array: 0 where no mask, else the palette slot
    of the state. COCO RLE runs are column-major, so the runs are written into a buffer of the
    sampled columns (each run is a slice of one column); only the runs on sampled columns are
    touched, which keeps a reduced layer of a 12-megapixel photo cheap.
    """
    h, w = ctx.height, ctx.width
    cols = np.zeros((-(-w // step), h), dtype=np.uint8)  # sampled columns x all rows
    if ctx.layers.masks:
        # The selection is not part of the mask layer (its box shows it): moving the selection
        # must not rebuild a 12-megapixel layer.
        for ov in visible_overlays(ctx):
            if ov.mask is None:
                continue
            slot = _mask_slot(ov)
            starts, lengths = rle_runs(ov.mask)
            ends = starts + lengths
            c0 = starts // h
            c1 = (ends - 1) // h
            single = (c0 == c1) & (c0 % step == 0)
            for c, r0, r1 in zip(
                (c0[single] // step).tolist(),
                (starts[single] - c0[single] * h).tolist(),
                (ends[single] - c0[single] * h).tolist(),
                strict=True,
            ):
                cols[c, r0:r1] = slot
            # runs that wrap into the next columns (objects taller than the photo's remainder)
            for s, e, a, b in zip(starts.tolist(), ends.tolist(), c0.tolist(), c1.tolist(), strict=True):
                if a == b:
                    continue
                for c in range(a + (-a % step), b + 1, step):
                    cols[c // step, max(s - c * h, 0) : min(e - c * h, h)] = slot
    return np.ascontiguousarray(cols[:, ::step].T)


def _palette_slot(state: str) -> int:
    try:
        return _PALETTE_ORDER.index(state) + 1
    except ValueError:
        return 1


def _mask_slot(ov: Overlay) -> int:
    """Palette slot of an overlay's mask: a prediction's own colour, an annotation's state colour."""
    if ov.key[0] == "pred":
        return _INSTANCE_BASE + ov.key[1] % len(INSTANCE_COLORS)
    return _palette_slot(ov.state)


def palette(alpha: float = MASK_ALPHA) -> np.ndarray:
    """Premultiplied ARGB32 colours of the palette slots (uint32, slot 0 transparent)."""
    colors = [(0, 0, 0, 0)]
    a = round(255 * alpha)
    for name in _PALETTE_ORDER:
        colors.append((*STATE_COLORS[name], a))
    colors.append((*SELECTED_COLOR, round(255 * min(1.0, alpha + 0.15))))
    for rgb in INSTANCE_COLORS:
        colors.append((*rgb, a))
    out = np.zeros(len(colors), dtype=np.uint32)
    for i, (r, g, b, al) in enumerate(colors):
        f = al / 255.0
        out[i] = (al << 24) | (round(r * f) << 16) | (round(g * f) << 8) | round(b * f)
    return out


def colorize(index: np.ndarray, alpha: float = MASK_ALPHA) -> np.ndarray:
    """Turn a palette index image into premultiplied ARGB32 pixels (uint32 HxW)."""
    return palette(alpha)[index]


def argb_to_qimage(pixels: np.ndarray) -> QImage:
    """Wrap a uint32 HxW premultiplied ARGB array as a QImage (copied, so the array may go)."""
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape
    img = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
    return img.copy()


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """Wrap an HxWx3 uint8 RGB array as an RGB32 QImage (the fastest format to draw)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.convertToFormat(QImage.Format.Format_RGB32)


def mask_layer(ctx: RenderContext, step: int = 1) -> QImage:
    """The whole mask layer of one image as one QImage (``step`` > 1: a reduced overview)."""
    return argb_to_qimage(colorize(mask_index_image(ctx, step)))


def overview_step(width: int, height: int, max_side: int = 2048) -> int:
    """Sampling step that brings the longer side of an image to at most ``max_side``."""
    return max(1, math.ceil(max(width, height) / max_side))


# --- boxes, labels, handles ------------------------------------------------------------------


def handle_rects(box: tuple[float, float, float, float], size: float) -> dict[str, QRectF]:
    """The 8 resize handles of a box (``size`` in image pixels), keyed by compass name."""
    x0, y0, x1, y1 = box
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    pts = {
        "nw": (x0, y0),
        "n": (xm, y0),
        "ne": (x1, y0),
        "e": (x1, ym),
        "se": (x1, y1),
        "s": (xm, y1),
        "sw": (x0, y1),
        "w": (x0, ym),
    }
    h = size / 2
    return {name: QRectF(x - h, y - h, size, size) for name, (x, y) in pts.items()}


def drag_box(
    box: tuple[float, float, float, float], handle: str, dx: float, dy: float, width: int, height: int
) -> tuple[float, float, float, float]:
    """Box after dragging one handle (or ``"move"``) by ``(dx, dy)``, kept inside the image."""
    x0, y0, x1, y1 = box
    if handle == "move":
        dx = min(max(dx, -x0), width - x1)
        dy = min(max(dy, -y0), height - y1)
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
    if "w" in handle:
        x0 += dx
    if "e" in handle:
        x1 += dx
    if "n" in handle:
        y0 += dy
    if "s" in handle:
        y1 += dy
    x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
    y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
    return (x0, y0, x1, y1)


def hit_test(ctx: RenderContext, x: float, y: float) -> Key | None:
    """The visible overlay under an image point: the smallest box containing it."""
    best: tuple[float, Key] | None = None
    for ov in visible_overlays(ctx):
        x0, y0, x1, y1 = ov.box
        if x0 <= x <= x1 and y0 <= y <= y1:
            area = (x1 - x0) * (y1 - y0)
            if best is None or area < best[0]:
                best = (area, ov.key)
    return None if best is None else best[1]


Mark = tuple[tuple[float, float, float, float], tuple[int, int, int], str]
"""An outline's label drawn among the tags: ``(box x0 y0 x1 y1, colour rgb, text)``."""


def paint_overlays(
    painter: QPainter, ctx: RenderContext, pixel_size: float = 1.0, marks: Sequence[Mark] = ()
) -> None:
    """Draw boxes, polygons, scores and the selection's handles.

    Overlays are drawn grouped by state (one pen, one ``drawRects`` call per state), because 50
    predictions drawn one by one cost more in Python calls than in pixels.

    Parameters
    ----------
    painter:
        A painter whose coordinates are image pixels.
    ctx:
        What to draw.
    pixel_size:
        Size of one screen pixel in image pixels (for fonts and handles that keep their screen size).
    marks:
        The texts of outlines drawn by the scene (label issues, evaluation errors): laid out with
        the tags, so that no two texts pile on each other.
    """
    px = pixel_size
    font = QFont()
    font.setPixelSize(max(1, round(12 * px)))
    painter.setFont(font)
    groups: dict[str, list[Overlay]] = {}
    selected = None
    for ov in visible_overlays(ctx):
        if ov.key == ctx.selected:
            selected = ov
        else:
            groups.setdefault(ov.state, []).append(ov)
    # with a selection, everything else steps back (the selected item is unmistakable)
    dim = DIMMED_ALPHA if ctx.selected is not None and selected is not None else 255
    layers: list[tuple[QColor, float, list[Overlay], bool]] = []
    for state, ovs in groups.items():
        color = state_color(state)
        color.setAlpha(dim)
        layers.append((color, 2 * px, ovs, state == "rejected"))
    if selected is not None:
        layers.append((QColor(*SELECTED_COLOR), 3 * px, [selected], selected.state == "rejected"))
    for color, width, ovs, dashed in layers:
        pen = QPen(color, width)
        if dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRects([QRectF(o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]) for o in ovs])
        for o in ovs:
            for poly in o.polygons:
                painter.drawPolygon(
                    QPolygonF([QPointF(poly[i], poly[i + 1]) for i in range(0, len(poly) - 1, 2)])
                )
    if selected is not None:
        painter.setPen(QPen(QColor(0, 0, 0), 0))
        painter.setBrush(QBrush(QColor(*SELECTED_COLOR)))
        painter.drawRects(list(handle_rects(selected.box, 8 * px).values()))
    if ctx.layers.labels or marks:
        _paint_tags(painter, layout_labels(ctx, px, marks), px)


def overlay_text(o: Overlay) -> str:
    """The tag of an overlay: its label (category, id), score, and note (box only, = #74)."""
    parts = [p for p in (o.label, None if o.score is None else f"{o.score:.2f}", o.note) if p]
    return " · ".join(parts)


def selection_image(ctx: RenderContext) -> tuple[QImage, QRectF] | None:
    """The selected item's mask in the selection colour with an opaque outline, and where it goes.

    Only the mask's box region is decoded into an image (a 12-megapixel layer is never rebuilt
    for a selection change). ``None`` when nothing with a mask is selected.
    """
    sel = next((o for o in visible_overlays(ctx) if o.key == ctx.selected), None)
    if sel is None or sel.mask is None or not ctx.layers.masks:
        return None
    from fusereview.core.geometry import rle_to_mask

    m = rle_to_mask(sel.mask)
    rows = np.flatnonzero(m.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, m.shape[0])
    c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, m.shape[1])
    crop = m[r0:r1, c0:c1]
    pad = np.pad(crop, 1)
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    edge = crop & ~inner
    r, g, b = SELECTED_COLOR
    fill_a = round(255 * SELECTED_MASK_ALPHA)
    fill = (
        (fill_a << 24)
        | (round(r * fill_a / 255) << 16)
        | (round(g * fill_a / 255) << 8)
        | round(b * fill_a / 255)
    )
    line = (255 << 24) | (r << 16) | (g << 8) | b
    pixels = np.where(edge, np.uint32(line), np.where(crop, np.uint32(fill), np.uint32(0))).astype(np.uint32)
    return argb_to_qimage(pixels), QRectF(c0, r0, c1 - c0, r1 - r0)


LABEL_HEIGHT_PX = 16  # screen pixels of a tag; its width follows its text (7 px a character)


@dataclass(frozen=True)
class Tag:
    """One label placed on the canvas: where, what, in which colour (image pixels)."""

    rect: QRectF
    text: str
    color: tuple[int, int, int]
    key: Key


def _tag_rank(ctx: RenderContext, o: Overlay) -> tuple[int, float]:
    """Who gets a label first: the selected item, the one under the mouse, then pending by score."""
    if o.key == ctx.selected:
        return (0, 0.0)
    if o.key == ctx.hovered:
        return (1, 0.0)
    return (2 if o.state == "pending" else 3, -(o.score or 0.0))


def layout_labels(ctx: RenderContext, pixel_size: float = 1.0, marks: Sequence[Mark] = ()) -> list[Tag]:
    """Labels that never pile on each other.

    Each visible item's tag goes above its box (inside it at the photo's top edge), or below the
    box when above is taken; a tag that would overlap one already placed is left out. So with many
    small objects the selected, hovered and most doubtful items keep theirs, and the others show
    theirs on hover. The texts of the scene's outlines (``marks``) come right after the selected
    item's tag and go below their box first (above, the item's own tag usually is): what an
    outline says is why the reviewer is looking. ``pixel_size`` is one screen pixel in image
    pixels: tags keep their screen size at any zoom.
    """
    px = pixel_size
    h = LABEL_HEIGHT_PX * px
    placed: list[Tag] = []
    ordered = sorted(visible_overlays(ctx), key=lambda o: _tag_rank(ctx, o)) if ctx.layers.labels else []
    first = [o for o in ordered if o.key == ctx.selected]
    for o in first:
        _place(placed, o.box, overlay_text(o), SELECTED_COLOR, o.key, px, h, below_first=False)
    for i, (box, colour, text) in enumerate(marks):
        if text:
            _place(placed, box, text, colour, ("mark", i), px, h, below_first=True)
    for o in ordered:
        if o.key == ctx.selected:
            continue
        color = STATE_COLORS.get(o.state, STATE_COLORS["pending"])
        _place(placed, o.box, overlay_text(o), color, o.key, px, h, below_first=False)
    return placed


def _place(
    placed: list[Tag],
    box: tuple[float, float, float, float],
    text: str,
    color: tuple[int, int, int],
    key: Any,
    px: float,
    h: float,
    *,
    below_first: bool,
) -> None:
    """Put ``text`` above or below ``box`` where it overlaps no placed tag; else leave it out."""
    if not text:
        return
    w = (7 * len(text) + 8) * px
    x0, y0, _x1, y1 = box
    above = y0 - h if y0 - h >= 0 else y0
    # an outline's text may also stack below the one under its box: two outlines of nearly the
    # same box (a label and its prediction) both keep their texts
    for ty in (y1, above, y1 + h, y1 + 2 * h) if below_first else (above, y1):
        rect = QRectF(x0, ty, w, h)
        if not any(rect.intersects(t.rect) for t in placed):
            placed.append(Tag(rect, text, color, key))
            return


def _paint_tags(painter: QPainter, tags: list[Tag], px: float) -> None:
    """Each tag: black text on a box of its item's colour."""
    painter.setPen(Qt.PenStyle.NoPen)
    for tag in tags:
        painter.setBrush(QColor(*tag.color))
        painter.drawRect(tag.rect)
    painter.setPen(QColor(0, 0, 0))
    for tag in tags:
        painter.drawText(QPointF(tag.rect.x() + 3 * px, tag.rect.y() + 12 * px), tag.text)
