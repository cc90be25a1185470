"""Random review sessions through the controller and its undo stack keep every promise of the export.

Hypothesis draws sequences of review actions (accept, reject, category, box drag, brush, eraser,
refine with a fake SAM3 that sometimes finds nothing, box only, take geometry, delete, draw, undo,
redo, navigation). After every step the project is exported and loaded with pycocotools, and:

- every annotation review made or edited holds the geometry invariants (area > 0, bbox = the
  mask's tight box, area = its pixel count, box only: ``segmentation: []`` and w*h);
- no rejected prediction is in the export;
- accepting a prediction that overlaps a label of its category at IoU >= 0.5 (measured here,
  independently of the matcher) adds no annotation;
- undoing everything gives back the first export byte for byte.

Bounded (30 sessions of at most 14 steps) so the whole test stays well under a minute on 2 cores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from fusereview.core.coco import load_dataset
from fusereview.core.geometry import _to_coco_rle, mask_to_rle, rle_to_mask, segmentation_to_rle
from fusereview.core.instances import check_annotation
from fusereview.core.project import Project
from fusereview.core.records import Detection, ReviewState

ACTIONS = (
    "select",
    "select_matched",
    "next",
    "image",
    "accept",
    "reject",
    "delete",
    "category",
    "box",
    "brush",
    "eraser",
    "refine",
    "box_only",
    "take",
    "add_box",
    "undo",
    "redo",
)


def _predictions(project: Project, seed: int) -> None:
    """Per image: predictions of two labels (matches), one shifted off a label, one false positive."""
    rng = np.random.default_rng(seed)
    cat = project.categories()[0].id
    for img in project.images():
        dets = []
        anns = project.annotations(image_id=img.id)
        for k, ann in enumerate(anns[:3]):
            m = rle_to_mask(segmentation_to_rle(ann.segmentation, img.height, img.width))
            if k == 2:  # moved by half its size: overlaps the label, but below IoU 0.5
                _, _, w, h = ann.bbox
                m = np.roll(m, (int(h * 0.6) + 1, int(w * 0.6) + 1), axis=(0, 1))
            ys, xs = np.nonzero(m)
            if not len(xs):
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            dets.append(Detection(box, float(rng.uniform(0.3, 0.95)), mask_to_rle(m), cat, "p"))
        fp = np.zeros((img.height, img.width), bool)
        fp[10:40, 10:50] = True
        fp[100:104, 200:204] = True  # a stray blob the geometry rule removes
        dets.append(
            Detection((10.0, 10.0, 50.0, 40.0), float(rng.uniform(0.05, 0.3)), mask_to_rle(fp), cat, "p")
        )
        dets.append(Detection((150.0, 150.0, 190.0, 170.0), 0.2, None, cat, "p"))  # box only
        project.store_predictions(img.id, "prop-model", "k", dets, category_id=cat)


class FakeRefine:
    """SAM3's box prompt, faked: a disc inside the box, or (when told) an empty mask."""

    def __call__(self, image_shape, box, rng) -> list[Detection]:
        h, w = image_shape
        x0, y0, x1, y1 = box
        m = np.zeros((h, w), bool)
        if rng.random() < 0.4:  # finds nothing
            return [Detection((x0, y0, x1, y1), 0.9, mask_to_rle(m), 1)]
        import cv2

        c = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        r = max(2, int(min(x1 - x0, y1 - y0) / 3))
        cv2.circle(m.view(np.uint8), c, r, 1, -1)
        ys, xs = np.nonzero(m)
        found = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        return [Detection(found, 0.9, mask_to_rle(m), 1)]


def _iou(pred, ann, h: int, w: int) -> float:
    """Mask IoU where both have a mask, else box IoU (what 'the same object' means here)."""
    pm = pred.mask
    am = None if ann.box_only else segmentation_to_rle(ann.segmentation, h, w)
    if pm is not None and am is not None:
        return float(mask_utils.iou([_to_coco_rle(pm)], [_to_coco_rle(am)], [0])[0][0])
    x, y, bw, bh = ann.bbox
    a = np.array([[*pred.box]])
    b = np.array([[x, y, x + bw, y + bh]])
    from fusereview.core.geometry import box_iou

    return float(box_iou(a, b)[0, 0])


def _check_export(project: Project, folder: Path, step: int) -> None:
    (out,) = project.export_coco(folder / f"step{step}.json")
    coco = _quiet_coco(out)
    rejected = {p.id for p in project.predictions(states=[ReviewState.REJECTED])}
    for ann in coco.dataset["annotations"]:
        info = ann.get("fusereview")
        img = coco.imgs[ann["image_id"]]
        if info is not None:
            assert info["prediction_id"] not in rejected, (
                f"rejected prediction {info['prediction_id']} exported"
            )
        problems = check_annotation(
            ann["bbox"], ann["segmentation"], ann["area"], img["height"], img["width"]
        )
        edited = info is not None or project.annotation(ann["id"]).geometry_edited_at  # merged: project ids
        if edited:
            assert problems == [], (ann["id"], problems)
            if ann["segmentation"]:
                assert coco.annToMask(ann).sum() == ann["area"]


def _quiet_coco(path: Path) -> COCO:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _drag_box(box, rng, w: int, h: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    if rng.random() < 0.5:  # a move
        dx, dy = rng.uniform(-15, 15), rng.uniform(-15, 15)
        dx = min(max(dx, -x0), w - x1)
        dy = min(max(dy, -y0), h - y1)
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
    nx0, nx1 = sorted((min(max(x0 + rng.uniform(-10, 10), 0), w), min(max(x1 + rng.uniform(-10, 10), 0), w)))
    ny0, ny1 = sorted((min(max(y0 + rng.uniform(-10, 10), 0), h), min(max(y1 + rng.uniform(-10, 10), 0), h)))
    return (nx0, ny0, max(nx1, nx0 + 1), max(ny1, ny0 + 1))


def _stroke(c, rng, erase: bool) -> dict | None:
    ov = next((o for o in c.ctx.overlays if o.key == c.selected), None)
    if ov is None:
        return None
    import cv2

    h, w = c.ctx.height, c.ctx.width
    base = rle_to_mask(ov.mask) if ov.mask is not None else np.zeros((h, w), bool)
    x0, y0, x1, y1 = ov.box
    stroke = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.uniform(x0, x1)), int(rng.uniform(y0, y1))
    cv2.circle(stroke, (cx, cy), int(rng.integers(2, 8)), 1, -1)
    new = base & ~stroke.astype(bool) if erase else base | stroke.astype(bool)
    return mask_to_rle(new)


def _step(c, project: Project, action: str, rng: np.random.Generator, refine: FakeRefine) -> None:
    img = project.image(c.image_id)
    if action == "select":
        keys = [o.key for o in c.ctx.overlays] + [None]
        c.select(keys[int(rng.integers(len(keys)))])
    elif action == "select_matched":  # the queue hides them by default; the canvas shows them
        keys = [o.key for o in c.ctx.overlays if o.key[0] == "pred" and project.prediction(o.key[1]).matched]
        if keys:
            c.select(keys[int(rng.integers(len(keys)))])
    elif action == "next":
        c.next_pending()
    elif action == "image":
        c.step_image(1 if rng.random() < 0.5 else -1)
    elif action == "accept":
        pid = c.selected[1] if c.selected and c.selected[0] == "pred" else None
        pred = project.prediction(pid) if pid is not None else None
        n = len(project.annotations())
        repeats = (
            pred is not None
            and pred.state is ReviewState.PENDING
            and any(
                a.category_id == pred.category_id and _iou(pred, a, img.height, img.width) >= 0.5
                for a in project.annotations(image_id=pred.image_id)
            )
        )
        c.accept()
        if repeats:
            assert len(project.annotations()) == n, (
                f"accepting prediction {pid} labelled a labelled object twice"
            )
    elif action == "reject":
        c.reject()
    elif action == "delete":
        c.delete()
    elif action == "category":
        c.set_category_number(int(rng.integers(1, 3)))
    elif action == "box":
        ov = next((o for o in c.ctx.overlays if o.key == c.selected), None)
        if ov is not None:
            c.edit_box(ov.key, _drag_box(ov.box, rng, img.width, img.height))
    elif action in ("brush", "eraser"):
        mask = _stroke(c, rng, erase=action == "eraser")
        if mask is not None:
            c.edit_mask(c.selected, mask)
    elif action == "refine":
        x0, y0 = rng.uniform(0, img.width - 40), rng.uniform(0, img.height - 40)
        box = (x0, y0, x0 + rng.uniform(10, 40), y0 + rng.uniform(10, 40))
        target = c.selected if rng.random() < 0.6 else None
        c.apply_refine(img.id, refine((img.height, img.width), box, rng), target, box)
    elif action == "box_only":
        c.make_box_only()
    elif action == "take":
        c.take_geometry()
    elif action == "add_box":
        x0, y0 = rng.uniform(0, img.width - 30), rng.uniform(0, img.height - 30)
        c.add_box((x0, y0, x0 + rng.uniform(0.2, 30), y0 + rng.uniform(0.2, 30)))
    elif action == "undo":
        c.undo()
    elif action == "redo":
        c.redo()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 1000),
    steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2**31)), min_size=1, max_size=14),
)
def test_random_review_sessions_keep_the_export_honest(qapp, dataset, seed, steps) -> None:
    from fusereview.qt.controller import ReviewController

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        project = Project.create(folder / "proj", load_dataset(dataset))
        try:
            _predictions(project, seed)
            original = {s: project.coco_text(s) for s in project.splits()}
            c = ReviewController(project, "prop", thumbnails=False)
            c.go_to_row(0)
            if c.image_id is None:
                c.open_image(project.images()[0].id)
            refine = FakeRefine()
            for i, (action, salt) in enumerate(steps):
                before = c.stack.index()
                _step(c, project, action, np.random.default_rng(salt), refine)
                event(f"{action}: {'changed' if c.stack.index() != before else 'no change'}")
                _check_export(project, folder, i)
            while c.stack.canUndo():
                c.undo()
            assert {s: project.coco_text(s) for s in project.splits()} == original
            assert all(p.state is ReviewState.PENDING for p in project.predictions())
            c.close()
        finally:
            project.close()


def test_the_property_test_can_fail(qapp, dataset, tmp_path, monkeypatch) -> None:
    """The checks above catch a writer that breaks the rule (here: accept stores the raw mask's box)."""
    from fusereview.core import project_decisions
    from fusereview.qt.controller import ReviewController

    project = Project.create(tmp_path / "proj", load_dataset(dataset))
    _predictions(project, 0)
    c = ReviewController(project, "prop", thumbnails=False)
    c.go_to_row(0)
    real = project_decisions.annotation_geometry

    def broken(mask, box=None):
        bbox, seg, area = real(mask, box)
        return (bbox[0], bbox[1], bbox[2] + 5, bbox[3]), seg, area  # a box the canvas never showed

    monkeypatch.setattr(project_decisions, "annotation_geometry", broken)
    unmatched = [p for p in project.predictions() if not p.matched and p.mask is not None]
    c.open_image(unmatched[0].image_id, ("pred", unmatched[0].id))
    c.accept()
    with pytest.raises(Exception, match="tight box"):
        _check_export(project, tmp_path, 0)
    c.close()
    project.close()
