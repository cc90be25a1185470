"""Undo and redo of every kind of edit, checked in the database (no window needed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fusereview.core.geometry import mask_to_rle
from fusereview.core.project import Project
from fusereview.core.records import ReviewState
from fusereview.qt.controller import ReviewController


def _state(project: Project) -> tuple:
    """What a reviewer's work changes: prediction states and links, live annotations."""
    preds = tuple((p.id, ReviewState(p.state).value, p.annotation_id) for p in project.predictions())
    anns = tuple(
        (a.id, a.category_id, tuple(round(v, 3) for v in a.bbox), repr(a.segmentation), a.source)
        for a in project.annotations()
    )
    return preds, anns


@pytest.fixture
def controller(qapp, project: Project) -> ReviewController:
    c = ReviewController(project, "tester", thumbnails=False)
    c.go_to_row(0)
    yield c
    c.close()


def _first_gt(project: Project, image_id: int):
    return next(a for a in project.annotations(image_id=image_id) if a.source == "gt")


def _brush(project: Project, pid: int) -> dict:
    p = project.prediction(pid)
    h, w = p.mask["size"]
    m = np.zeros((h, w), dtype=bool)
    m[20:60, 20:60] = True
    m[35:45, 35:45] = False  # a hole
    return mask_to_rle(m)


def _shrunk(ann) -> tuple[float, float, float, float]:
    """The annotation's box, 2 px smaller on every side (the mask is clipped with it)."""
    x, y, w, h = ann.bbox
    return (x + 2, y + 2, x + w - 2, y + h - 2)


EDITS: dict[str, Callable[[ReviewController], None]] = {
    "accept": lambda c: c.accept(),
    "reject": lambda c: c.reject(),
    "delete_key_on_prediction": lambda c: c.delete(),
    "category": lambda c: c.set_category_number(2),
    "edit_box": lambda c: c.edit_box(c.selected, (5.0, 6.0, 70.0, 80.0)),
    "edit_mask": lambda c: c.edit_mask(c.selected, _brush(c.project, c.selected[1])),
    "accept_then_edit": lambda c: (
        c.stack.beginMacro("two"),
        c.accept(),
        c.edit_box(("pred", c.stack.command(0).child(0).pid), (1.0, 2.0, 30.0, 40.0)),
        c.stack.endMacro(),
    ),
    "add_box": lambda c: c.add_box((100.0, 100.0, 140.0, 150.0)),
    "add_polygon": lambda c: c.add_polygon([10.0, 10.0, 60.0, 10.0, 60.0, 50.0]),
    "gt_box": lambda c: c.edit_box(
        ("gt", _first_gt(c.project, c.image_id).id), _shrunk(_first_gt(c.project, c.image_id))
    ),
    "gt_polygon": lambda c: c.edit_polygons(
        ("gt", _first_gt(c.project, c.image_id).id), [[5.0, 5.0, 40.0, 5.0, 40.0, 40.0, 5.0, 40.0]]
    ),
    "gt_category": lambda c: (
        c.select(("gt", _first_gt(c.project, c.image_id).id)),
        c.set_category_number(2),
    ),
    "gt_delete": lambda c: (c.select(("gt", _first_gt(c.project, c.image_id).id)), c.delete()),
    "accept_above": lambda c: c.accept_above(0.3),
    "reject_below": lambda c: c.reject_below(0.9),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_undo_redo_restores_database(controller: ReviewController, project: Project, name: str) -> None:
    before = _state(project)
    EDITS[name](controller)
    after = _state(project)
    assert after != before, f"{name} changed nothing"
    assert controller.stack.count() == 1, "each action is one undo step"
    controller.undo()
    assert _state(project) == before
    controller.redo()
    assert _state(project) == after
    controller.undo()
    assert _state(project) == before


def test_edit_of_accepted_prediction_undoes_to_accepted(
    controller: ReviewController, project: Project
) -> None:
    pid = controller.selected[1]
    from fusereview.qt.commands import DecideCommand

    # a bare command keeps the selection (accept() would move on to the next pending item)
    controller.stack.push(DecideCommand(controller.ops, pid, ReviewState.ACCEPTED))
    accepted = _state(project)
    ann_id = project.prediction(pid).annotation_id
    controller.edit_box(("pred", pid), (3.0, 4.0, 50.0, 60.0))
    assert project.prediction(pid).state == ReviewState.EDITED
    controller.undo()
    assert _state(project) == accepted
    assert project.prediction(pid).annotation_id == ann_id, "undo keeps the annotation id"
