"""What the reviewer accepts is exactly what is exported: the scenarios of the issue, through the core.

Each test replays one way a label the reviewer never saw used to be written, and checks the
exported COCO (loaded with pycocotools) against what was stored and shown.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from test_project import SIZE, box_mask, make_project

from fusereview.core import geometry
from fusereview.core.instances import check_annotation
from fusereview.core.project import Project, ProjectError
from fusereview.core.records import Detection, ReviewState
from fusereview.core.review import ReviewSession


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = make_project(tmp_path)
    yield p
    p.close()


def _export(project: Project, tmp_path: Path, split: str = "train") -> COCO:
    (out,) = project.export_coco(tmp_path / f"out-{split}.json", split=split)
    coco = COCO(str(out))
    return coco


def _review_anns(coco: COCO) -> list[dict]:
    return [a for a in coco.dataset["annotations"] if "fusereview" in a]


def _assert_invariants(coco: COCO) -> None:
    for ann in _review_anns(coco):
        img = coco.imgs[ann["image_id"]]
        assert (
            check_annotation(ann["bbox"], ann["segmentation"], ann["area"], img["height"], img["width"]) == []
        )
        if ann["segmentation"]:
            m = coco.annToMask(ann)
            assert m.sum() == ann["area"]


def test_accepted_box_is_the_box_shown_not_the_mask_with_blobs(project: Project, tmp_path: Path) -> None:
    """Scenario 1: a mask with stray blobs on other fuses exported a 322x213 box for a 35x45 one."""
    image = project.images("train")[0]
    m = np.zeros((SIZE, SIZE), bool)
    m[40:50, 44:56] = True  # the object, in its box
    m[2:5, 58:63] = True  # a blob on another object, far from the box
    m[58:63, 0:6] = True
    (pred,) = project.store_predictions(
        image.id, "m", "k", [Detection((44, 40, 56, 50), 0.7, geometry.mask_to_rle(m), 1)]
    )
    shown = project.prediction(pred.id)  # what the canvas draws: the stored instance
    assert shown.box == (44.0, 40.0, 56.0, 50.0) and geometry.rle_area(shown.mask) == 120
    ann = project.annotation(project.decide(pred.id, ReviewState.ACCEPTED).annotation_id)
    coco = _export(project, tmp_path)
    (exported,) = [a for a in _review_anns(coco) if a["id"] == coco_id(project, ann.id)]
    assert exported["bbox"] == [44.0, 40.0, 12.0, 10.0] and exported["area"] == 120
    assert np.array_equal(coco.annToMask(exported).astype(bool), geometry.rle_to_mask(shown.mask))
    _assert_invariants(coco)


def coco_id(project: Project, annotation_id: int) -> int:
    return project.db.read_one("SELECT coco_id FROM annotations WHERE id = ?", (annotation_id,))[0]


def test_empty_mask_is_accepted_as_its_box(project: Project, tmp_path: Path) -> None:
    """Scenario 2: an empty mask became bbox [0,0,0,0], area 0, the predicted box thrown away."""
    image = project.images("train")[1]
    empty = geometry.mask_to_rle(np.zeros((SIZE, SIZE), bool))
    (pred,) = project.store_predictions(image.id, "m", "k", [Detection((40, 30, 60, 52), 0.6, empty, 1)])
    assert project.prediction(pred.id).mask is None and "box only" in project.prediction(pred.id).note
    project.decide(pred.id, ReviewState.ACCEPTED)
    coco = _export(project, tmp_path)
    (exported,) = _review_anns(coco)
    assert exported["bbox"] == [40.0, 30.0, 20.0, 22.0]
    assert exported["segmentation"] == [] and exported["area"] == 440.0
    _assert_invariants(coco)


def test_box_drag_clips_the_mask_and_area_follows(project: Project, tmp_path: Path) -> None:
    """Scenario 3: a dragged handle changed the box, not the mask; bbox, mask and area disagreed."""
    image = project.images("train")[0]
    (pred,) = project.store_predictions(
        image.id, "m", "k", [Detection((40, 30, 60, 52), 0.6, box_mask(40, 30, 60, 52), 1)]
    )
    session = ReviewSession(project)
    edited = session.edit(pred.id, box=(40, 30, 50, 41))
    ann = project.annotation(edited.annotation_id)
    assert ann.bbox == (40.0, 30.0, 10.0, 11.0) and ann.area == 110.0
    coco = _export(project, tmp_path)
    (exported,) = _review_anns(coco)
    assert coco.annToMask(exported).sum() == 110 and exported["bbox"] == [40.0, 30.0, 10.0, 11.0]
    _assert_invariants(coco)
    # a box moved off every mask pixel changes nothing and says why
    with pytest.raises(ValueError, match="holds none of the mask"):
        session.edit(pred.id, box=(0, 55, 5, 60))
    assert project.annotation(edited.annotation_id) == ann


def test_refine_that_finds_nothing_changes_nothing(project: Project) -> None:
    """Scenario 4: a refine over an empty region stored an all-zero mask (bbox 0,0,0,0)."""
    image = project.images("train")[0]
    (pred,) = project.store_predictions(
        image.id, "m", "k", [Detection((40, 30, 60, 52), 0.6, box_mask(40, 30, 60, 52), 1)]
    )
    empty = geometry.mask_to_rle(np.zeros((SIZE, SIZE), bool))
    with pytest.raises(ValueError, match="empty"):
        project.decide(pred.id, ReviewState.EDITED, mask=empty)
    assert project.prediction(pred.id).state is ReviewState.PENDING
    assert project.annotations(image.id) == project.annotations(image.id)  # nothing added
    assert len(project.annotations(image.id)) == 2


def test_matched_prediction_records_agreement_not_a_duplicate(project: Project, tmp_path: Path) -> None:
    """Scenario 6: a prediction of a labelled object added a second annotation of it."""
    image = project.images("train")[0]
    gt = project.annotations(image.id)[0]  # (4, 6, 12, 10)
    x, y, w, h = gt.bbox
    dup = Detection((x, y, x + w, y + h), 0.9, box_mask(int(x), int(y), int(x + w), int(y + h)), 1)
    twin = replace(dup, score=0.5)  # SAM3 can find one object twice
    first, second = project.store_predictions(image.id, "m", "k", [dup, twin])
    first, second = project.prediction(first.id), project.prediction(second.id)
    assert (first.match_kind, first.match_annotation_id) == ("match", gt.id)
    assert (second.match_kind, second.match_annotation_id) == ("duplicate", gt.id)
    assert first.match_iou == pytest.approx(1.0)
    session = ReviewSession(project)
    assert {i.prediction_id for i in session.queue(matched=False)}.isdisjoint({first.id, second.id})
    assert {i.prediction_id for i in session.queue(matched=True)} == {first.id, second.id}
    before = project.coco_text("train")
    for pid in (first.id, second.id):
        decided = session.accept(pid)
        assert decided.state is ReviewState.ACCEPTED and decided.agrees_with == gt.id
        assert decided.annotation_id is None
    assert project.coco_text("train") == before, "agreement writes no annotation"
    log = project.db.read("SELECT detail FROM decisions ORDER BY id")
    assert log[-1][0].startswith(f"agrees with annotation {gt.id}")
    # an edit of a matched prediction would label the object twice: refused
    third = project.store_predictions(image.id, "m2", "k", [dup])[0]
    with pytest.raises(ProjectError, match=f"matches annotation {gt.id}"):
        session.set_category(third.id, 1)
    # rejecting an agreed prediction never touches the label
    session.reject(first.id)
    assert project.annotation(gt.id) == gt


def test_take_geometry_replaces_the_label_and_undoes_exactly(project: Project, tmp_path: Path) -> None:
    image = project.images("train")[0]
    gt = project.annotations(image.id)[0]
    x, y, w, h = gt.bbox
    better = box_mask(int(x) + 1, int(y), int(x + w), int(y + h))  # matches (IoU > 0.5), not equal
    (pred,) = project.store_predictions(
        image.id, "m", "k", [Detection((x + 1, y, x + w, y + h), 0.8, better, 1)]
    )
    before_text = project.coco_text("train")
    taken = ReviewSession(project).take_geometry(pred.id)
    assert taken.state is ReviewState.ACCEPTED and taken.annotation_id is None
    label = project.annotation(gt.id)
    assert label.bbox == (x + 1, y, w - 1, h) and label.area == (w - 1) * h and label.geometry_edited_at
    assert project.invariant_problems() == []
    # undo: the prediction back to pending, the label back to its exact bytes
    project.decide(pred.id, ReviewState.PENDING)
    project.restore_annotation(gt)
    assert project.coco_text("train") == before_text
    with pytest.raises(ProjectError, match="matches no annotation"):
        lone = project.store_predictions(image.id, "m2", "k", [Detection((40, 40, 50, 50), 0.4, None, 1)])[0]
        project.decide(lone.id, ReviewState.ACCEPTED, take_geometry=True)


def test_matches_follow_the_labels(project: Project) -> None:
    image = project.images("train")[0]
    (pred,) = project.store_predictions(image.id, "m", "k", [Detection((40, 30, 60, 52), 0.6, None, 1)])
    assert not project.prediction(pred.id).matched
    drawn = project.add_annotation(image.id, 1, bbox=[40, 30, 20, 22])
    assert project.prediction(pred.id).match_annotation_id == drawn.id
    project.delete_annotation(drawn.id)
    assert not project.prediction(pred.id).matched
    # another category never matches (that is a class question, not a duplicate)
    other = project.store_predictions(
        image.id, "m", "k2", [Detection((4, 6, 16, 16), 0.6, box_mask(4, 6, 16, 16), 1)]
    )[0]
    assert project.prediction(other.id).matched


@pytest.mark.parametrize(
    ("det", "field"),
    [
        (Detection((1, 1, 9, 9), 0.5, {"size": [SIZE, SIZE], "counts": "ÿÿÿ"}, 1), "mask"),
        (Detection((1, 1, 9, 9), 0.5, {"size": [SIZE, SIZE], "counts": ""}, 1), "mask"),
        (Detection((1, 1, 9, 9), 0.5, {"size": [8, 8], "counts": "0"}, 1), "mask"),
        (Detection((1, 1, 9, 9), 0.5, {"counts": "0"}, 1), "mask"),
        (Detection((100, 100, 120, 130), 0.5, None, 1), "box"),
        (Detection((3, 3, 3.2, 9), 0.5, None, 1), "box"),
    ],
)
def test_store_predictions_refuses_bad_input_naming_image_and_field(
    project: Project, det: Detection, field: str
) -> None:
    image = project.images()[0]
    good = Detection((40, 30, 60, 52), 0.6, None, 1)
    with pytest.raises(ProjectError, match=rf"{image.file_name}: detection 1: {field}"):
        project.store_predictions(image.id, "m", "k", [good, det])
    assert project.predictions() == [] and project.cached_predictions(image.id, "m", "k") is None


def test_store_predictions_refuses_non_finite_scores_and_boxes(project: Project) -> None:
    image = project.images()[0]
    for attr, value, field in (("score", math.nan, "score"), ("box", (0.0, 0.0, math.nan, 5.0), "box")):
        det = Detection((1, 1, 9, 9), 0.5, None, 1)
        object.__setattr__(det, attr, value)  # as a caller that bypasses the dataclass check would
        with pytest.raises(ProjectError, match=rf"detection 0: {field}"):
            project.store_predictions(image.id, "m", "k", [det])
    assert project.predictions() == []


def test_skip_empty_leaves_out_only_what_cannot_be_an_instance(project: Project) -> None:
    image = project.images()[0]
    dets = [Detection((0, 0, 0, 10), 0.5, None, 1), Detection((40, 30, 60, 52), 0.6, None, 1)]
    stored = project.store_predictions(image.id, "m", "k", dets, skip_empty=True)
    assert [p.box for p in stored] == [(40.0, 30.0, 60.0, 52.0)]


def test_export_refuses_an_annotation_that_breaks_the_rule(project: Project, tmp_path: Path) -> None:
    image = project.images("train")[0]
    added = project.add_annotation(image.id, 1, bbox=[40, 30, 10, 10])
    # what a bug (or an older version) could have written: a zero-area review label
    with sqlite3.connect(project.db_path) as conn:
        conn.execute("UPDATE annotations SET area = 0 WHERE id = ?", (added.id,))
    target = tmp_path / "out.json"
    with pytest.raises(ProjectError, match=rf"annotation {added.id}: area must be > 0"):
        project.export_coco(target, split="train")
    assert not target.exists()


def test_a_schema_1_project_is_upgraded_with_a_backup(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    image = project.images("train")[0]
    blobby = np.zeros((SIZE, SIZE), bool)
    blobby[40:50, 44:56] = True
    blobby[0:3, 0:3] = True
    project.store_predictions(
        image.id, "m", "k", [Detection((44, 40, 56, 50), 0.7, geometry.mask_to_rle(blobby), 1)]
    )
    root = project.root
    project.close()
    # rewrite it as schema 1 wrote it: the raw mask, a box-only review label as its rectangle
    with sqlite3.connect(root / "project.db") as conn:
        conn.execute("UPDATE predictions SET mask = ?", (json.dumps(geometry.mask_to_rle(blobby)),))
        conn.execute(
            "INSERT INTO annotations (image_id, coco_id, category_id, bbox, segmentation, area, iscrowd, source)"
            " VALUES (?, 99, 1, '[1.0,2.0,3.0,4.0]', '[[1.0,2.0,4.0,2.0,4.0,6.0,1.0,6.0]]', 12.0, 0, 'review')",
            (image.id,),
        )
        for table, column in (
            ("predictions", "geometry"),
            ("predictions", "match_annotation_id"),
            ("predictions", "match_iou"),
            ("predictions", "match_kind"),
            ("annotations", "geometry_edited_at"),
            ("decisions", "detail"),
        ):
            conn.execute("DROP INDEX IF EXISTS predictions_queue")
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DROP TABLE label_checks")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Project.open(root) as again:
        assert again.label_checks() == [] and again.db.read_one("SELECT COUNT(*) FROM label_checks") == (0,)
        (pred,) = again.predictions()
        assert geometry.rle_area(pred.mask) == 120, "the pending prediction became its instance"
        box_only = next(a for a in again.annotations() if a.source == "review")
        assert box_only.segmentation == [] and box_only.area == 12.0
        assert again.invariant_problems() == []
    assert list(root.glob("project.db.bak-v1-*")), "no backup of the schema-1 database"
