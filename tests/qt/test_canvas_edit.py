"""Correction tools driven with the mouse: box handles, brush and eraser, polygons, new objects."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt

from fusereview.core.geometry import rle_to_mask, segmentation_to_rle
from fusereview.core.records import ReviewState


def _vp(window, x: float, y: float) -> QPoint:
    return window.view.mapFromScene(QPointF(x, y))


def _drag(qtbot, window, start: tuple[float, float], end: tuple[float, float], steps: int = 4) -> None:
    vp = window.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=_vp(window, *start))
    for i in range(1, steps + 1):
        t = i / steps
        qtbot.mouseMove(
            vp, _vp(window, start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
        )
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=_vp(window, *end))


def _selected_box(window) -> tuple[float, float, float, float]:
    ov = window.scene.overlay(window.controller.selected)
    assert ov is not None
    return ov.box


def _stored_mask(project, ann, shape):
    return rle_to_mask(segmentation_to_rle(ann.segmentation, *shape))


def test_drag_box_handle_clips_the_mask_with_the_box(qtbot, window, project) -> None:
    """Regression: a dragged handle changed the box but not the mask (bbox and mask apart, old area)."""
    c = window.controller
    pid = c.selected[1]
    before = rle_to_mask(project.prediction(pid).mask)
    x0, y0, x1, y1 = _selected_box(window)
    zoom = window.view.zoom
    tol = 1.5 / zoom + 0.01  # one screen pixel of rounding at this zoom
    # drag the south-east handle 12 image pixels left and 8 up: the box shrinks, the mask with it
    _drag(qtbot, window, (x1, y1), (x1 - 12, y1 - 8))
    pred = project.prediction(pid)
    assert pred.state == ReviewState.EDITED
    ann = project.annotation(pred.annotation_id)
    grid = 1.0 + tol  # the box of a mask lies on whole pixels (the nearest pixel edge)
    assert abs(ann.bbox[0] - x0) < tol and abs(ann.bbox[1] - y0) < tol
    assert abs(ann.bbox[0] + ann.bbox[2] - (x1 - 12)) < grid
    assert abs(ann.bbox[1] + ann.bbox[3] - (y1 - 8)) < grid
    mask = _stored_mask(project, ann, before.shape)
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == tuple(ann.bbox)
    assert ann.area == mask.sum() < before.sum()
    assert not mask[:, int(x1) - 6 :].any(), "mask pixels outside the new box were kept"
    # a whole drag is one undo step
    assert c.stack.count() == 1
    # dragging the handle out beyond the mask: the box is fitted to the mask and the tool says so
    nx1, ny1 = ann.bbox[0] + ann.bbox[2], ann.bbox[1] + ann.bbox[3]
    _drag(qtbot, window, (nx1, ny1), (nx1 + 20, ny1 + 20))
    grown = project.annotation(pred.annotation_id)
    assert grown.bbox == ann.bbox and grown.area == ann.area
    assert "box fitted to its mask" in window.statusBar().currentMessage()
    assert window._resegment is not None and window._resegment[0] == ("pred", pid)
    while c.stack.canUndo():
        c.undo()
    assert project.prediction(pid).state == ReviewState.PENDING


def test_move_box_by_dragging_inside(qtbot, window, project) -> None:
    c = window.controller
    pid = c.selected[1]
    x0, y0, x1, y1 = _selected_box(window)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    _drag(qtbot, window, (cx, cy), (cx + 6, cy + 5))
    ann = project.annotation(project.prediction(pid).annotation_id)
    tol = 1.5 / window.view.zoom + 0.01
    assert abs(ann.bbox[0] - (x0 + 6)) < tol and abs(ann.bbox[1] - (y0 + 5)) < tol
    # the mask moved with the box: same pixel count, now inside the moved box
    before = rle_to_mask(project.prediction(pid).mask)
    moved = _stored_mask(project, ann, before.shape)
    assert moved.sum() == before.sum() == ann.area
    ys, xs = np.nonzero(moved)
    assert (xs.min(), ys.min()) == (ann.bbox[0], ann.bbox[1])


def test_brush_and_eraser_change_the_rle(qtbot, window, project) -> None:
    c = window.controller
    pid = c.selected[1]
    before = rle_to_mask(project.prediction(pid).mask)
    ys, xs = np.nonzero(before)
    cx, cy = float(xs.mean()), float(ys.mean())
    window.review.brush_size.setValue(4)
    # paint a stroke to the right of the object: new pixels join the mask
    window.set_tool("brush")
    right = float(xs.max()) + 10
    _drag(qtbot, window, (right, cy - 3), (right, cy + 3))
    pred = project.prediction(pid)
    assert pred.state == ReviewState.EDITED
    ann = project.annotation(pred.annotation_id)
    after = rle_to_mask(segmentation_to_rle(ann.segmentation, *before.shape))
    assert after[round(cy), round(right)] and not before[round(cy), round(right)]
    assert after.sum() > before.sum()
    # erase a hole in the middle: the mask keeps the hole, so it stays an RLE
    window.set_tool("eraser")
    window.review.brush_size.setValue(2)
    _drag(qtbot, window, (cx, cy), (cx + 1, cy), steps=1)
    ann = project.annotation(project.prediction(pid).annotation_id)
    assert isinstance(ann.segmentation, dict), "a mask with a hole must stay RLE"
    holed = rle_to_mask(ann.segmentation)
    assert not holed[round(cy), round(cx)]
    assert c.stack.count() == 2  # one command per stroke
    c.undo()
    ann = project.annotation(project.prediction(pid).annotation_id)
    restored = rle_to_mask(segmentation_to_rle(ann.segmentation, *before.shape))
    assert restored[round(cy), round(cx)]


def test_draw_new_box_and_polygon_then_edit_vertices(qtbot, window, project) -> None:
    c = window.controller
    image_id = c.image_id
    n_before = len(project.annotations(image_id=image_id))
    window.set_tool("box")
    _drag(qtbot, window, (150, 150), (190, 200))
    anns = project.annotations(image_id=image_id)
    assert len(anns) == n_before + 1
    new = max(anns, key=lambda a: a.id)
    assert new.source == "review"
    assert all(
        abs(a - b) < 1.5 / window.view.zoom + 0.01 for a, b in zip(new.bbox, (150, 150, 40, 50), strict=True)
    )

    window.set_tool("polygon")
    vp = window.view.viewport()
    for x, y in ((200, 20), (240, 20), (240, 60)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=_vp(window, x, y))
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    poly = max(project.annotations(image_id=image_id), key=lambda a: a.id)
    assert poly.id != new.id and isinstance(poly.segmentation, list) and len(poly.segmentation[0]) == 6

    # vertex drag on the selected polygon, then Ctrl+click deletes? (keeps >= 3), Shift+click inserts
    window.set_tool("select")
    c.select(("gt", poly.id))
    _drag(qtbot, window, (240, 60), (230, 70))
    seg = project.annotation(poly.id).segmentation[0]
    assert abs(seg[4] - 230) < 1.5 and abs(seg[5] - 70) < 1.5
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, _vp(window, 220, 20))
    assert len(project.annotation(poly.id).segmentation[0]) == 8
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, _vp(window, 220, 20))
    assert len(project.annotation(poly.id).segmentation[0]) == 6
    # everything above undoes step by step, back to the start
    while c.stack.canUndo():
        c.undo()
    assert len(project.annotations(image_id=image_id)) == n_before


def test_brush_on_a_polygon_label_adds_to_what_it_shows(qtbot, window, project) -> None:
    """Regression: painting on a polygon label started from an empty mask, so one small stroke
    replaced the whole polygon with the stroke (a label the reviewer never drew)."""
    c = window.controller
    image_id = c.image_id
    window.set_tool("polygon")
    vp = window.view.viewport()
    for x, y in ((100, 20), (160, 20), (160, 80), (100, 80)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=_vp(window, x, y))
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    poly = max(project.annotations(image_id=image_id), key=lambda a: a.id)
    assert isinstance(poly.segmentation, list)
    shape = (window.scene.ctx.height, window.scene.ctx.width)
    before = _stored_mask(project, poly, shape)
    c.select(("gt", poly.id))
    window.review.brush_size.setValue(3)
    window.set_tool("brush")
    _drag(qtbot, window, (165, 40), (165, 60))  # a stroke just right of the square
    ann = project.annotation(poly.id)
    after = _stored_mask(project, ann, shape)
    assert (after & before).sum() == before.sum(), "the polygon's pixels were lost"
    assert after[50, 165] and after.sum() > before.sum()
    assert ann.area == after.sum()
    ys, xs = np.nonzero(after)
    assert tuple(ann.bbox) == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    # the eraser on a polygon label cuts a hole in what it shows, never empties it
    window.set_tool("eraser")
    _drag(qtbot, window, (130, 50), (131, 50), steps=1)
    holed = _stored_mask(project, project.annotation(poly.id), shape)
    assert not holed[50, 130] and holed[30, 110]
    c.undo()
    c.undo()
    assert project.annotation(poly.id).segmentation == poly.segmentation


def test_a_stroke_that_changes_nothing_says_so(qtbot, window, project) -> None:
    """Regression: the eraser on a box-only item (no mask) and a stroke outside a mask did nothing
    and said nothing."""
    c = window.controller
    pid = c.selected[1]
    qtbot.keyClick(window.view, Qt.Key.Key_O)  # box only: nothing to erase
    ann_id = project.prediction(pid).annotation_id
    before = project.annotation(ann_id)
    depth = c.stack.index()
    x0, y0, x1, y1 = window.scene.overlay(c.selected).box
    window.set_tool("eraser")
    _drag(qtbot, window, ((x0 + x1) / 2, (y0 + y1) / 2), ((x0 + x1) / 2 + 2, (y0 + y1) / 2), steps=1)
    assert "no mask to erase" in window.statusBar().currentMessage()
    assert project.annotation(ann_id) == before and c.stack.index() == depth
    c.undo()  # back to its mask; erase where the mask is not
    window.set_tool("eraser")
    window.review.brush_size.setValue(2)
    _drag(qtbot, window, (2, 2), (3, 2), steps=1)
    assert "changed no pixel" in window.statusBar().currentMessage()
    assert c.stack.index() == depth - 1  # the stroke pushed nothing
