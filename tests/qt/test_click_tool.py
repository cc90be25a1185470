"""The Click tool (C): clicks to a mask in the background, Enter = one undoable change, Esc discards.

The GUI plumbing is driven with a deterministic segmenter (discs around the clicks), so these tests
check the tool, the job and the write path, not a model; the shipped head's masks are tested in
``tests/demo/test_demo_interactive.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from fusereview.core.geometry import mask_to_rle, rle_to_mask, segmentation_to_rle
from fusereview.core.instances import check_annotation
from fusereview.core.records import ReviewState
from fusereview.models.interactive import ClickResult
from fusereview.qt.canvas.tools import ClickTool


class DiscSegmenter:
    """Stands in for the interactive head: the union of discs around positive clicks, minus negatives."""

    def __init__(self, radius: int = 9) -> None:
        self.radius = radius
        self.calls: list[dict] = []
        self.embedded: set[str] = set()

    def segment(self, key, image, points, *, box=None, mask_logits=None, mask=None) -> ClickResult:
        first = key not in self.embedded
        if first:
            rgb = image() if callable(image) else image
            self.embedded.add(key)
            self.shape = rgb.shape[:2]
        self.calls.append({"key": key, "points": list(points), "logits": mask_logits, "mask": mask})
        h, w = self.shape
        yy, xx = np.mgrid[:h, :w]
        out = np.zeros((h, w), dtype=bool) if mask is None else mask.copy()
        for x, y, label in points:
            disc = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= self.radius**2
            out = out | disc if label == 1 else out & ~disc
        ys, xs = np.nonzero(out)
        box_px = None if len(xs) == 0 else (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return ClickResult(
            mask_to_rle(out), int(out.sum()), box_px, 0.9, 0.9, np.zeros((64, 64), np.float32), first, 0.001
        )


def _vp(window, x: float, y: float) -> QPoint:
    return window.view.mapFromScene(QPointF(x, y))


def _click(qtbot, window, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
    vp = window.view.viewport()
    qtbot.mousePress(vp, button, pos=_vp(window, x, y))
    qtbot.mouseRelease(vp, button, pos=_vp(window, x, y))


def _clicks_done(qtbot, tool: ClickTool, n: int) -> None:
    qtbot.waitUntil(
        lambda: tool.job is None and tool.result is not None and len(tool.points) == n, timeout=10_000
    )


@pytest.fixture
def clicking(qtbot, window):
    """The window with a (deterministic) interactive head and the Click tool chosen with its key."""
    seg = DiscSegmenter()
    window.review.set_click_head(seg, "")
    qtbot.keyClick(window.view, Qt.Key.Key_C)
    assert isinstance(window.scene.tool, ClickTool)
    return window, seg


def test_the_tool_is_greyed_out_while_the_model_has_no_head(qtbot, window, tmp_path: Path) -> None:
    from fusereview.models import load_predictor, save_export, tiny_model
    from fusereview.models.tiny import tiny_tokenizer

    act = window.review.tool_actions["click"]
    assert not act.isEnabled() and "no model loaded yet" in act.toolTip()
    export = save_export(tmp_path / "export", tiny_model(), tiny_tokenizer())  # a detector-only export
    window.predictor = load_predictor(str(export))
    window.model_spec = str(export)
    job = window._load_click_head()
    qtbot.waitUntil(lambda: "loading" not in act.toolTip(), timeout=30_000)
    assert job.stop_requested is False
    assert not act.isEnabled()
    assert "detector-only export" in act.toolTip()
    qtbot.keyClick(window.view, Qt.Key.Key_C)
    assert not isinstance(window.scene.tool, ClickTool)  # C does nothing while greyed out


def test_left_right_enter_adds_one_annotation_through_the_geometry_rule(
    qtbot, clicking, project, tmp_path
) -> None:
    window, seg = clicking
    c = window.controller
    c.select(None)
    image_id = c.image_id
    tool = window.scene.tool
    before = {a.id for a in project.annotations(image_id=image_id)}
    depth = c.stack.count()
    _click(qtbot, window, 120, 100)
    _clicks_done(qtbot, tool, 1)
    assert tool.result.area > 0 and window.scene.preview.boundingRect().width() > 0
    _click(qtbot, window, 134, 100, Qt.MouseButton.RightButton)
    _clicks_done(qtbot, tool, 2)
    assert [p[2] for p in seg.calls[-1]["points"]] == [1, 0]
    assert len(seg.embedded) == 1 and len(seg.calls) == 2  # one embedding, two clicks
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    added = [a for a in project.annotations(image_id=image_id) if a.id not in before]
    assert len(added) == 1
    ann = added[0]
    img = project.image(image_id)
    mask = rle_to_mask(segmentation_to_rle(ann.segmentation, img.height, img.width))
    ys, xs = np.nonzero(mask)
    assert mask[100, 119] and not mask[100, 134]  # the positive pixel in, the negative out
    assert tuple(ann.bbox) == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    assert ann.area == mask.sum() > 0
    assert ann.category_id == c.new_category_id and ann.source == "review"
    assert check_annotation(ann.bbox, ann.segmentation, ann.area, img.height, img.width) == []
    assert c.stack.count() == depth + 1  # one undo step
    assert tool.points == [] and tool.result is None
    # it exports as a valid COCO annotation (pycocotools reads it back, same pixels)
    from pycocotools.coco import COCO

    out = c.export(tmp_path / "out.json")[0]  # all splits merged: project ids
    coco = COCO(str(out))
    exported = [a for a in coco.dataset["annotations"] if a["id"] == ann.id]
    assert len(exported) == 1 and list(exported[0]["bbox"]) == list(ann.bbox)
    assert coco.annToMask(exported[0]).sum() == ann.area
    # undo removes it, redo brings the same annotation back
    c.undo()
    assert ann.id not in {a.id for a in project.annotations(image_id=image_id)}
    c.redo()
    assert project.annotation(ann.id).area == ann.area


def test_escape_discards_the_clicks(qtbot, clicking, project) -> None:
    window, _ = clicking
    c = window.controller
    c.select(None)
    n = len(project.annotations(image_id=c.image_id))
    depth = c.stack.count()
    _click(qtbot, window, 120, 100)
    _clicks_done(qtbot, window.scene.tool, 1)
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert window.scene.tool.points == [] and window.scene.preview.boundingRect().width() <= 8
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    assert len(project.annotations(image_id=c.image_id)) == n and c.stack.count() == depth


def test_enter_right_after_a_click_accepts_the_mask_once_it_is_ready(qtbot, clicking, project) -> None:
    window, seg = clicking
    c = window.controller
    c.select(None)
    n = len(project.annotations(image_id=c.image_id))
    slow = seg.segment

    def slower(*a, **k):
        time.sleep(0.3)
        return slow(*a, **k)

    seg.segment = slower
    _click(qtbot, window, 60, 60)
    qtbot.keyClick(window.view, Qt.Key.Key_Return)  # the job is still running
    qtbot.waitUntil(lambda: len(project.annotations(image_id=c.image_id)) == n + 1, timeout=10_000)


def test_on_a_selected_annotation_the_clicks_refine_its_mask(qtbot, clicking, project) -> None:
    window, seg = clicking
    c = window.controller
    image_id = c.image_id
    ann = project.annotations(image_id=image_id)[0]
    c.select(("gt", ann.id))
    img = project.image(image_id)
    old = rle_to_mask(segmentation_to_rle(ann.segmentation, img.height, img.width))
    x, y, w, h = ann.bbox
    _click(qtbot, window, x + w + 6, y + h / 2)  # grow it to the right
    _clicks_done(qtbot, window.scene.tool, 1)
    assert seg.calls[-1]["mask"] is not None and np.array_equal(seg.calls[-1]["mask"], old)
    depth = c.stack.count()
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    new = project.annotation(ann.id)
    grown = rle_to_mask(segmentation_to_rle(new.segmentation, img.height, img.width))
    assert grown.sum() > old.sum() and (grown & old).sum() == old.sum()
    assert check_annotation(new.bbox, new.segmentation, new.area, img.height, img.width) == []
    assert c.stack.count() == depth + 1
    c.undo()
    back = project.annotation(ann.id)
    assert json.dumps(back.segmentation) == json.dumps(ann.segmentation) and back.area == ann.area


def test_on_a_selected_prediction_the_mask_becomes_its_edit(qtbot, clicking, project) -> None:
    window, _ = clicking
    c = window.controller
    assert c.selected is not None and c.selected[0] == "pred"
    pid = c.selected[1]
    x0, y0, x1, y1 = project.prediction(pid).box
    _click(qtbot, window, (x0 + x1) / 2, (y0 + y1) / 2)
    _clicks_done(qtbot, window.scene.tool, 1)
    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    pred = project.prediction(pid)
    assert pred.state == ReviewState.EDITED and pred.annotation_id is not None
    ann = project.annotation(pred.annotation_id)
    img = project.image(pred.image_id)
    assert check_annotation(ann.bbox, ann.segmentation, ann.area, img.height, img.width) == []
    c.undo()
    assert project.prediction(pid).state == ReviewState.PENDING


def test_another_photo_drops_the_clicks(qtbot, clicking, project) -> None:
    window, _ = clicking
    c = window.controller
    c.select(None)
    _click(qtbot, window, 120, 100)
    _clicks_done(qtbot, window.scene.tool, 1)
    c.step_image(1)
    assert window.scene.tool.points == [] and window.scene.tool.result is None
