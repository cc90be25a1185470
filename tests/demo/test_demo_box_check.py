"""Asking the demo model about a label's own box tells an overlooked object from a box on nothing.

A label no detection supports is spurious or overlooked, and detections cannot tell which; the
interactive head, prompted with the label's box, can (``fusereview.models.box_check``). Here with
the shipped demo model's head: on photos of the demo's seed (objects' boxes, and boxes on nothing),
then end to end on the planted project, where an unseen correct label and the planted spurious one
tie until the boxes are checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from label_issue_samples import overlook_a_label, planted_project

from fusereview.core.geometry import box_iou
from fusereview.core.label_issues import box_support_score, find_label_issues
from fusereview.core.synthetic import render_image
from fusereview.demo.project import DEMO_SEED, DEMO_SIZE, demo_model_dir
from fusereview.models import load_model
from fusereview.models.box_check import check_label_boxes, labels_to_check
from fusereview.models.interactive import load_interactive


@pytest.fixture(scope="module")
def segmenter():
    model = demo_model_dir()
    return load_interactive(model, load_model(model), device="cpu")


def test_an_object_box_is_supported_and_a_box_on_nothing_is_not(segmenter) -> None:
    rng = np.random.default_rng(DEMO_SEED + 7)  # photos the head was not trained on
    on_objects, on_nothing = [], []
    for n in range(3):
        img, objs = render_image(rng, DEMO_SIZE)
        boxes = []
        for o in objs:
            ys, xs = np.nonzero(o["mask"])
            if len(xs) >= 100:
                boxes.append((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
        for b in boxes:
            on_objects.append(box_support_score(segmenter.segment(f"photo{n}", img, [], box=b).mask, b))
        placed = 0
        while placed < 6:
            w, h = rng.uniform(15, 40, 2)
            x, y = rng.uniform(0, DEMO_SIZE - w), rng.uniform(0, DEMO_SIZE - h)
            b = (x, y, x + w, y + h)
            if boxes and box_iou(np.array([b]), np.array(boxes)).max() >= 0.1:
                continue
            on_nothing.append(box_support_score(segmenter.segment(f"photo{n}", img, [], box=b).mask, b))
            placed += 1
    assert len(on_objects) >= 10 and len(on_nothing) == 18
    # measured: every object >= 0.84, every box on nothing 0.0 (19 objects, 32 boxes, other photos)
    assert np.mean(np.array(on_objects) >= 0.5) >= 0.9, sorted(on_objects)
    assert np.mean(np.array(on_nothing) < 0.5) >= 0.9, sorted(on_nothing)


def test_checking_the_boxes_ranks_a_box_on_nothing_above_an_overlooked_label(
    segmenter, tmp_path: Path
) -> None:
    project, where = planted_project(tmp_path)
    try:
        spurious = project.annotation(where.spurious)
        unseen = overlook_a_label(project, where)  # a correct label no detection supports
        before = {i.annotation_id: i.score for i in find_label_issues(project, kind="spurious").issues}
        assert before[unseen.id] == pytest.approx(before[spurious.id]), "they tie on detections alone"
        ids = labels_to_check(project)
        assert {unseen.id, spurious.id} <= set(ids)
        seen: list[tuple[int, int]] = []
        support = check_label_boxes(project, segmenter, ids, progress=lambda d, t: seen.append((d, t)))
        assert seen[-1] == (len(ids), len(ids)) and set(support) == set(ids)
        assert support[unseen.id] >= 0.5 > support[spurious.id]
        after = find_label_issues(project, box_support=support)
        ranked = [i.annotation_id for i in after.issues]
        assert spurious.id in ranked and ranked.index(spurious.id) < (
            ranked.index(unseen.id) if unseen.id in ranked else len(ranked)
        )
        by_id = {i.annotation_id: i for i in after.issues}
        # the model looked at the box and found nothing: no tempering by its recall any more
        assert by_id[spurious.id].kind == "spurious"
        assert by_id[spurious.id].score == pytest.approx(1 - support[spurious.id])
        assert by_id[spurious.id].score > before[spurious.id]
        # asking stops when cancelled, with what was asked so far
        assert check_label_boxes(project, segmenter, ids, cancelled=lambda: True) == {}
    finally:
        project.close()
