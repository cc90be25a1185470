"""Grab the real window and check overlay colours where they must be drawn."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF

from fusereview.core.geometry import rle_to_mask
from fusereview.qt.canvas.render import INSTANCE_COLORS, SELECTED_COLOR, STATE_COLORS


def _grab(window) -> np.ndarray:
    window.repaint()
    img = window.grab().toImage().convertToFormat(window.grab().toImage().Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return arr.reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def _window_xy(window, x: float, y: float) -> tuple[int, int]:
    p = window.view.viewport().mapTo(window, window.view.mapFromScene(QPointF(x, y)))
    return p.x(), p.y()


def _has_colour(pixels: np.ndarray, xy: tuple[int, int], rgb: tuple[int, int, int], tol: int = 12) -> bool:
    x, y = xy
    patch = pixels[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(int)
    return bool((np.abs(patch - np.array(rgb)).max(axis=1) <= tol).any())


def test_boxes_are_drawn_in_their_state_colour(qtbot, window, project) -> None:
    c = window.controller
    window.actions_by_name["fit"].trigger()
    sel = window.scene.overlay(c.selected)
    others = [
        o for o in c.ctx.overlays if o.key[0] == "pred" and o.key != c.selected and o.state == "pending"
    ]
    assert others, "the fixture has several pending predictions per image"
    pixels = _grab(window)
    x0, y0, _x1, y1 = sel.box
    # the selected box is yellow on its left edge (half way down, away from the label and handles)
    assert _has_colour(pixels, _window_xy(window, x0, (y0 + 3 * y1) / 4), SELECTED_COLOR)
    o = others[0]
    _ox0, oy0, ox1, oy1 = o.box
    edge = _window_xy(window, ox1, (oy0 + 3 * oy1) / 4)
    # while an item is selected the others step back (dimmed), in full colour once nothing is
    assert not _has_colour(pixels, edge, STATE_COLORS["pending"])
    c.select(None)
    plain = _grab(window)
    assert _has_colour(plain, edge, STATE_COLORS["pending"])
    # accept the other one: its edge turns to the accepted colour
    image_id = c.image_id
    c.select(o.key)
    c.accept()  # moves on to the next pending prediction, maybe on another image: come back
    c.open_image(image_id, None)
    pixels = _grab(window)
    assert _has_colour(pixels, _window_xy(window, ox1, (oy0 + 3 * oy1) / 4), STATE_COLORS["accepted"])


def test_mask_layer_tints_the_mask_pixels(qtbot, window, project) -> None:
    c = window.controller
    c.select(None)
    pending = next(o for o in c.ctx.overlays if o.key[0] == "pred" and o.mask is not None)
    m = rle_to_mask(pending.mask)
    # a pixel well inside the mask (erode by looking for a fully-inside 5x5 block)
    ys, xs = np.nonzero(m)
    inside = [(x, y) for x, y in zip(xs, ys, strict=True) if m[y - 2 : y + 3, x - 2 : x + 3].all()]
    x, y = inside[len(inside) // 2]
    with_masks = _grab(window)
    window.review.layer_actions["masks"].setChecked(False)
    without = _grab(window)
    wx, wy = _window_xy(window, x + 0.5, y + 0.5)
    a = with_masks[wy, wx].astype(int)
    b = without[wy, wx].astype(int)
    own = np.array(INSTANCE_COLORS[pending.key[1] % len(INSTANCE_COLORS)])
    # the tinted pixel moved toward the prediction's own colour
    assert np.abs(a - own).sum() < np.abs(b - own).sum()
    # and outside any mask nothing changed
    empty = np.argwhere(~m)
    ey, ex = empty[0]
    far = _window_xy(window, ex + 0.5, ey + 0.5)
    if not any(o.mask is not None and rle_to_mask(o.mask)[ey, ex] for o in c.ctx.overlays):
        assert np.array_equal(with_masks[far[1], far[0]], without[far[1], far[0]])


def test_the_selected_mask_is_unmistakable(qtbot, window, project) -> None:
    """The selected item's mask is filled in the selection colour; the other masks are dimmed."""
    c = window.controller
    window.actions_by_name["fit"].trigger()
    sel = next(o for o in c.ctx.overlays if o.key[0] == "pred" and o.mask is not None)
    other = next(o for o in c.ctx.overlays if o.key != sel.key and o.mask is not None)

    def inside(ov):
        m = rle_to_mask(ov.mask)
        for o in c.ctx.overlays:  # a pixel of this mask only
            if o.key != ov.key and o.mask is not None:
                m &= ~rle_to_mask(o.mask)
        ys, xs = np.nonzero(m)
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if m[y - 2 : y + 3, x - 2 : x + 3].all()]
        x, y = pts[len(pts) // 2]
        return _window_xy(window, x + 0.5, y + 0.5)

    c.select(None)
    none = _grab(window)
    c.select(sel.key)
    picked = _grab(window)
    yellow = np.array(SELECTED_COLOR)
    sx, sy = inside(sel)
    ox, oy = inside(other)
    # the selected mask moved toward the selection colour
    assert np.abs(picked[sy, sx].astype(int) - yellow).sum() < np.abs(none[sy, sx].astype(int) - yellow).sum()
    # another mask's tint is weaker than with nothing selected (closer to the bare photo)
    window.review.layer_actions["masks"].setChecked(False)
    bare = _grab(window)
    window.review.layer_actions["masks"].setChecked(True)
    tint_plain = np.abs(none[oy, ox].astype(int) - bare[oy, ox].astype(int)).sum()
    tint_dimmed = np.abs(picked[oy, ox].astype(int) - bare[oy, ox].astype(int)).sum()
    assert tint_dimmed < tint_plain
