"""Label issues: the four kinds and their scores, the planted errors of a tiny project, the fixes, the ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from label_issue_samples import HOLDER, MODEL, Planted, planted_project
from pycocotools.coco import COCO

from fusereview.core.geometry import box_iou
from fusereview.core.instances import check_annotation
from fusereview.core.label_issues import (
    ISSUE_MIN,
    KINDS,
    LabelIssuesError,
    band,
    choose_model,
    find_label_issues,
    image_score,
    score_image,
)
from fusereview.core.matching import Candidate
from fusereview.core.project import Project, ProjectError
from fusereview.core.records import Detection, ReviewState


def ann(i: int, box: tuple[float, float, float, float], cat: int = 1) -> Candidate:
    return Candidate(i, cat, box, None)


def pred(i: int, box: tuple[float, float, float, float], score: float, cat: int = 1) -> Candidate:
    return Candidate(i, cat, box, None, score)


def by_kind(issues: list) -> dict[str, list]:
    out: dict[str, list] = {k: [] for k in KINDS}
    for issue in issues:
        out[issue.kind].append(issue)
    return out


# --- the scores -----------------------------------------------------------------------------------


def test_each_kind_is_found_with_its_documented_score() -> None:
    anns = [
        ann(1, (0, 0, 10, 10)),  # correct: its prediction agrees
        ann(2, (20, 0, 30, 10)),  # misplaced: the prediction is 6 px to the right (IoU 0.25)
        ann(3, (40, 0, 50, 10)),  # wrong class: a category-2 prediction covers it
        ann(4, (60, 0, 70, 10)),  # spurious: nothing there
    ]
    preds = [
        pred(11, (0, 0, 10, 10), 0.9),
        pred(12, (26, 0, 36, 10), 0.8),
        pred(13, (40, 0, 50, 10), 0.7, cat=2),
        pred(14, (80, 0, 90, 10), 0.6),  # missing: no label there
    ]
    issues = score_image(7, anns, preds)
    found = by_kind(issues)
    assert [i.annotation_id for i in found["spurious"]] == [4]
    assert found["spurious"][0].score == pytest.approx(1.0) and found["spurious"][0].prediction_id is None
    (misplaced,) = found["misplaced"]
    assert (misplaced.annotation_id, misplaced.prediction_id) == (2, 12)
    # real by its score or by lying beside the label: 1 - (1 - 0.8)(1 - 0.25 / 0.5), band 1
    assert misplaced.iou == pytest.approx(4 / 16) and misplaced.score == pytest.approx(0.9)
    (wrong,) = found["wrong_class"]
    assert (wrong.annotation_id, wrong.prediction_id, wrong.prediction_category_id) == (3, 13, 2)
    assert wrong.score == pytest.approx(0.7)
    (missing,) = found["missing"]
    assert (missing.annotation_id, missing.prediction_id, missing.score) == (None, 14, pytest.approx(0.6))
    # the correct label has no issue (its prediction lies exactly on it), and the
    # prediction that explains the misplaced label is not also a missing label
    assert all(i.annotation_id != 1 for i in issues)
    assert all(i.prediction_id != 12 for i in found["missing"])
    assert all(i.image_id == 7 for i in issues)


def test_a_label_confirmed_where_it_is_is_not_misplaced_by_a_neighbour() -> None:
    """A second (unlabelled) object beside a well-confirmed label is a missing label, not a move."""
    anns = [ann(1, (0, 0, 10, 10))]
    preds = [pred(11, (0, 0, 10, 10), 0.95), pred(12, (7, 0, 17, 10), 0.9)]
    (issue,) = score_image(1, anns, preds)
    assert issue.kind == "missing" and issue.prediction_id == 12
    assert issue.score == pytest.approx(0.9 * (1 - 30 / 170))


def test_the_misplaced_band_and_the_confirming_prediction() -> None:
    assert band(0.05) == 0.0 and band(0.1) == 1.0 and band(0.5) == 1.0
    assert band(0.575) == pytest.approx(0.5) and band(0.65) == 0.0 and band(0.9) == 0.0
    # matched at IoU 0.55 (a shifted label that still matches): misplaced, scored down by the band
    anns = [ann(1, (0, 0, 10, 10))]
    preds = [pred(11, (2.9, 0, 12.9, 10), 0.8)]  # IoU 7.1/12.9 = 0.55
    (issue,) = score_image(1, anns, preds, min_score=0.0)
    u = 7.1 / 12.9
    vouch = 0.8 * (1 - band(u))
    assert issue.kind == "misplaced" and issue.score == pytest.approx(1.0 * band(u) * (1 - vouch))


def test_a_prediction_beside_a_label_outranks_a_lone_prediction_of_the_same_score() -> None:
    """A misplaced label (its object's prediction beside it) ranks above a lone false positive.

    A false positive seldom lands next to a label of its own category, so the label vouches that
    the object beside it is real: the old rule scored the misplaced label by the prediction's
    score alone (0.7) and put the lone, more confident prediction (0.8, a false positive or a
    missing label, equally likely) first.
    """
    anns = [ann(1, (0, 0, 10, 10))]
    preds = [pred(11, (6, 0, 16, 10), 0.7), pred(12, (60, 60, 70, 70), 0.8)]  # IoU 4/16 with label 1
    issues = sorted(score_image(1, anns, preds), key=lambda i: -i.score)
    assert [(i.kind, i.prediction_id) for i in issues] == [("misplaced", 11), ("missing", 12)]
    assert issues[0].score == pytest.approx(1 - (1 - 0.7) * (1 - 0.25 / 0.5))
    assert issues[1].score == pytest.approx(0.8)
    # the same prediction far from any label says nothing about where the label is
    far = [pred(11, (30, 0, 40, 10), 0.7)]
    assert {i.kind for i in score_image(1, anns, far)} == {"spurious", "missing"}


def test_a_label_of_one_object_twice_is_spurious_once() -> None:
    anns = [ann(1, (0, 0, 10, 10)), ann(2, (0, 0, 10, 10.5))]
    preds = [pred(11, (0, 0, 10, 10), 0.9)]
    (issue,) = score_image(1, anns, preds)
    assert (issue.kind, issue.annotation_id) == ("spurious", 2)


def test_own_category_cover_lowers_a_wrong_class_score() -> None:
    anns = [ann(1, (0, 0, 10, 10))]
    preds = [pred(11, (0, 0, 10, 10), 0.9, cat=2), pred(12, (0, 0, 10, 10), 0.3)]
    (issue,) = score_image(1, anns, preds, min_score=0.0)
    assert issue.kind == "wrong_class" and issue.score == pytest.approx(0.9 * (1 - 0.3))
    # its own category's prediction lies exactly on it: something is there, not spurious
    assert issue.kind_score("spurious") == pytest.approx(0.0)


def test_support_of_a_confirming_prediction_is_its_score_or_its_exact_overlap() -> None:
    anns = [ann(1, (0, 0, 10, 10)), ann(2, (20, 0, 30, 10))]
    preds = [pred(11, (0, 0, 10, 10), 0.06), pred(12, (20, 0, 30, 12.5), 0.2)]  # IoU 1 and 0.8
    issues = {i.annotation_id: i for i in score_image(1, anns, preds, min_score=0.0)}
    assert issues[1].kind_score("spurious") == pytest.approx(0.0)
    assert issues[2].kind_score("spurious") == pytest.approx((1 - 0.2) * (1 - 0.8))


def test_recall_scales_spurious_and_checked_and_missing_ok_filter() -> None:
    anns = [ann(1, (0, 0, 10, 10)), ann(2, (50, 50, 60, 60), cat=2)]
    preds = [pred(11, (80, 80, 90, 90), 0.9)]
    issues = by_kind(score_image(1, anns, preds, recall={1: 0.5}))
    assert {i.annotation_id: i.score for i in issues["spurious"]} == {1: 0.5, 2: 1.0}
    assert score_image(1, anns, preds, checked=set(), missing_ok=set()) == []


def test_a_box_inside_the_label_disagrees_about_its_size_not_its_place() -> None:
    # both predictions overlap their label at IoU 0.45; one lies inside it, one beside it
    anns = [ann(1, (0, 0, 20, 20)), ann(2, (50, 0, 70, 20))]
    inside = pred(11, (3, 3, 16.4, 16.4), 0.9)  # 13.4² / 20² = 0.45
    beside = pred(12, (57.6, 0, 77.6, 20), 0.9)  # shifted by 7.6 px: 12.4 / 27.6 = 0.45
    issues = {i.annotation_id: i for i in score_image(1, anns, [inside, beside], min_score=0.0)}
    assert issues[2].kind == "misplaced" and issues[2].score > 0.9
    assert issues[1].kind_score("misplaced") == pytest.approx(0.0)
    # the same inner box, shifted half out of the label, is misplaced again
    out = pred(13, (12, 3, 25.4, 16.4), 0.9)
    (issue,) = score_image(1, anns[:1], [out], min_score=0.0)
    assert issue.kind == "misplaced" and issue.score > 0.5


def test_one_object_answered_by_two_prompts_is_one_missing_label() -> None:
    # nothing labelled there; both categories' prompts answer it (as SAM3 often does)
    anns = [ann(1, (50, 50, 60, 60))]
    preds = [pred(11, (0, 0, 10, 10), 0.9), pred(12, (0, 0, 10, 10.5), 0.85, cat=2)]
    missing = by_kind(score_image(1, anns, preds))["missing"]
    assert [(i.prediction_id, i.category_id) for i in missing] == [(11, 1)]
    # the twin of the prediction that says where a misplaced label's object is, is that object too
    anns = [ann(1, (0, 0, 10, 10))]
    preds = [pred(11, (6, 0, 16, 10), 0.9), pred(12, (6, 0, 16, 10.5), 0.9, cat=2)]
    issues = score_image(1, anns, preds)
    assert [(i.kind, i.prediction_id) for i in issues] == [("misplaced", 11)]
    # objects side by side (IoU < 0.5) are two missing labels
    preds = [pred(11, (0, 0, 10, 10), 0.9), pred(12, (6, 0, 16, 10), 0.8, cat=2)]
    assert len(by_kind(score_image(1, [], preds))["missing"]) == 2


def test_one_kind_scores_every_label_for_it() -> None:
    anns = [
        ann(1, (0, 0, 10, 10)),  # misplaced first (IoU 0.43 with 11), and wrong class second (12)
        ann(2, (40, 0, 50, 10)),  # wrong class only
        ann(3, (80, 0, 90, 10)),  # spurious only
    ]
    preds = [
        pred(11, (4, 0, 14, 10), 0.95),
        pred(12, (0, 0, 10, 10), 0.6, cat=2),
        pred(13, (40, 0, 50, 10), 0.7, cat=2),
        pred(14, (0, 40, 10, 50), 0.8),  # a missing label
    ]
    every = {i.key: i for i in score_image(1, anns, preds, min_score=0.0)}
    assert every[("gt", 1)].kind == "misplaced"
    wrong = score_image(1, anns, preds, min_score=0.0, kind="wrong_class")
    assert {i.annotation_id for i in wrong} == {1, 2} and {i.kind for i in wrong} == {"wrong_class"}
    first = next(i for i in wrong if i.annotation_id == 1)
    # its score and prediction for that kind, and what else it might be kept
    assert (first.prediction_id, first.prediction_category_id) == (12, 2)
    assert first.score == pytest.approx(every[("gt", 1)].kind_score("wrong_class"))
    assert first.kind_score("misplaced") == pytest.approx(every[("gt", 1)].score)
    spurious = score_image(1, anns, preds, min_score=0.0, kind="spurious")
    assert {i.annotation_id for i in spurious} == {1, 2, 3}
    assert max(spurious, key=lambda i: i.score).annotation_id == 3
    missing = score_image(1, anns, preds, kind="missing")
    assert [(i.kind, i.prediction_id) for i in missing] == [("missing", 14)]
    with pytest.raises(ValueError, match="kind 'typo'"):
        score_image(1, anns, preds, kind="typo")


def test_box_support_score_is_fill_times_the_share_inside() -> None:
    from fusereview.core.geometry import mask_to_rle
    from fusereview.core.label_issues import BOX_FILL_FULL, box_support_score

    mask = np.zeros((40, 60), dtype=bool)
    box = (10.0, 10.0, 30.0, 30.0)
    assert box_support_score(mask, box) == 0.0  # an empty mask
    mask[10:30, 10:30] = True
    assert box_support_score(mask, box) == pytest.approx(1.0)
    assert box_support_score(mask_to_rle(mask), box) == pytest.approx(1.0)  # RLE as the head gives it
    mask[:] = False
    mask[10:20, 10:30] = True  # half the box, all inside
    assert box_support_score(mask, box) == pytest.approx(min(1.0, 0.5 / BOX_FILL_FULL))
    mask[:] = False
    mask[0:40, 35:60] = True  # beside the box: nothing there
    assert box_support_score(mask, box) == 0.0
    mask[10:30, 10:30] = True  # the box filled, and as much again outside it
    assert box_support_score(mask, box) == pytest.approx(400 / (400 + 1000))


def test_box_support_is_support_for_a_label_no_detection_sees() -> None:
    anns = [ann(1, (0, 0, 10, 10)), ann(2, (50, 50, 60, 60))]
    plain = {i.annotation_id: i for i in score_image(1, anns, [], min_score=0.0)}
    assert plain[1].score == plain[2].score == pytest.approx(1.0)  # a tie on detections alone
    boxed = {i.annotation_id: i for i in score_image(1, anns, [], min_score=0.0, box_support={1: 0.9})}
    assert boxed[1].kind == "spurious" and boxed[1].score == pytest.approx(0.1)
    assert boxed[1].prediction_id is None and boxed[2].score == pytest.approx(1.0)
    # a model that overlooks half the labels tempers "nothing seen", not "nothing in the box"
    tempered = score_image(1, anns, [], min_score=0.0, recall={1: 0.5}, box_support={1: 0.0})
    assert {i.annotation_id: i.score for i in tempered} == {1: pytest.approx(1.0), 2: pytest.approx(0.5)}


def test_image_score_aggregates_as_at_least_one() -> None:
    assert image_score([]) == 0.0
    assert image_score([0.5, 0.5]) == pytest.approx(0.75)
    assert image_score([1.0, 0.2]) == pytest.approx(1.0)


boxes = st.tuples(
    st.floats(0, 80), st.floats(0, 80), st.floats(2, 40), st.floats(2, 40), st.integers(1, 2)
).map(lambda t: ((t[0], t[1], t[0] + t[2], t[1] + t[3]), t[4]))


@settings(max_examples=40, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.lists(boxes, max_size=8),
    detections=st.lists(st.tuples(boxes, st.floats(0.05, 1.0)), max_size=10),
)
def test_scores_are_in_the_unit_interval_and_one_issue_per_item(labels: list, detections: list) -> None:
    anns = [ann(i + 1, b, c) for i, (b, c) in enumerate(labels)]
    preds = [pred(100 + i, b, s, c) for i, ((b, c), s) in enumerate(detections)]
    issues = score_image(1, anns, preds, min_score=0.0)
    keys = [i.key for i in issues]
    assert len(keys) == len(set(keys)), "an item with two issues"
    assert len([k for k in keys if k[0] == "gt"]) == len(anns), "every label is scored (min_score 0)"
    for issue in issues:
        assert 0.0 <= issue.score <= 1.0 and issue.kind in KINDS
        assert all(0.0 <= s <= 1.0 for _, s in issue.scores) and issue.scores[0] == (issue.kind, issue.score)
        if issue.kind == "missing":
            # a missing label matches no label of its category
            same = [a.box for a in anns if a.category_id == issue.category_id]
            if same:
                assert box_iou(np.array([issue.prediction_box]), np.array(same)).max() < 0.5


# --- a project with planted errors ----------------------------------------------------------------


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Project, Planted]:
    project, where = planted_project(tmp_path)
    yield project, where
    project.close()


def planted_issues(project: Project, where: Planted) -> dict[str, object]:
    report = find_label_issues(project, min_score=0.0)
    out = {}
    for issue in report.issues:
        if issue.annotation_id == where.misplaced:
            out["misplaced"] = issue
        elif issue.annotation_id == where.wrong_class:
            out["wrong_class"] = issue
        elif issue.annotation_id == where.spurious:
            out["spurious"] = issue
        elif (
            issue.kind == "missing"
            and box_iou(np.array([issue.prediction_box]), np.array([where.missing_box]))[0, 0] > 0.9
        ):
            out["missing"] = issue
    out["rest"] = [i for i in report.issues if not any(i is v for v in out.values())]
    return out


def test_each_planted_error_is_found_and_ranked_above_every_correct_label(planted) -> None:
    project, where = planted
    assert choose_model(project) == MODEL
    found = planted_issues(project, where)
    for kind in KINDS:
        assert kind in found, f"planted {kind} not found"
        assert found[kind].kind == kind, f"planted {kind} called {found[kind].kind}"
    lowest = min(found[k].score for k in KINDS)
    top = max(i.score for i in found["rest"])
    assert lowest > top, (
        f"a correct label or prediction ({top:.3f}) ranks above a planted error ({lowest:.3f})"
    )
    # the queue's default (ISSUE_MIN) keeps all four
    default = find_label_issues(project)
    assert all(i.score >= ISSUE_MIN for i in default.issues)
    assert {found[k].key for k in KINDS} <= {i.key for i in default.issues}
    assert default.image_scores[where.image_id] == max(default.image_scores.values())


def test_each_kinds_queue_ranks_its_planted_error_first(planted) -> None:
    project, where = planted
    found = planted_issues(project, where)
    for kind in KINDS:
        report = find_label_issues(project, kind=kind)
        assert report.issues and {i.kind for i in report.issues} == {kind}
        assert report.issues[0].key == found[kind].key, f"{kind} queue: {report.issues[0]}"
        scores = [i.score for i in report.issues]
        assert scores == sorted(scores, reverse=True)


def test_each_fix_reaches_the_exported_coco_and_the_history(planted, tmp_path: Path) -> None:
    project, where = planted
    found = planted_issues(project, where)
    fixes = {"missing": "add", "misplaced": "geometry", "wrong_class": "class", "spurious": "delete"}
    checks = {
        kind: project.fix_label_issue(found[kind], action, by="ana", model=MODEL)
        for kind, action in fixes.items()
    }
    assert [c.action for c in project.label_checks()] == list(fixes.values())
    assert all(c.decided_by == "ana" and c.active and c.model == MODEL for c in checks.values())
    added_id = checks["missing"].annotation_id
    # a fix through a prediction is also a decision of the history, naming the issue
    details = dict(project.db.read("SELECT prediction_id, detail FROM decisions WHERE decided_by = 'ana'"))
    for kind in ("missing", "misplaced", "wrong_class"):
        assert "label issue: " in details[found[kind].prediction_id]
    (out,) = project.export_coco(tmp_path / "train.json", split="train")
    coco = COCO(str(out))
    image = next(
        i for i in coco.dataset["images"] if i["file_name"] == project.image(where.image_id).file_name
    )
    exported = {a["id"]: a for a in coco.dataset["annotations"] if a["image_id"] == image["id"]}
    coco_of = dict(project.db.read("SELECT id, coco_id FROM annotations"))

    def xyxy(a: dict) -> np.ndarray:
        x, y, w, h = a["bbox"]
        return np.array([[x, y, x + w, y + h]])

    # the label is exactly the prediction shown (its instance), which is the true object
    added = exported[coco_of[added_id]]
    assert xyxy(added)[0].tolist() == list(project.prediction(found["missing"].prediction_id).box)
    assert box_iou(xyxy(added), np.array([where.missing_box]))[0, 0] > 0.8, "the missing object was not added"
    moved = exported[coco_of[where.misplaced]]
    assert xyxy(moved)[0].tolist() == list(project.prediction(found["misplaced"].prediction_id).box)
    assert box_iou(xyxy(moved), np.array([where.misplaced_truth]))[0, 0] > 0.8, "the label was not moved"
    assert exported[coco_of[where.wrong_class]]["category_id"] == 1, "the class was not changed"
    assert coco_of[where.spurious] not in exported, "the spurious label was not deleted"
    for a in (added, moved):
        assert (
            check_annotation(a["bbox"], a["segmentation"], a["area"], image["height"], image["width"]) == []
        )
    # fixed issues are gone; the prediction that supplied a geometry or class now agrees with the label
    left = {i.key for i in find_label_issues(project).issues}
    assert not left & {found[k].key for k in KINDS} and ("gt", added_id) not in left
    assert project.prediction(found["misplaced"].prediction_id).agrees_with == where.misplaced
    assert project.prediction(found["wrong_class"].prediction_id).agrees_with == where.wrong_class


def test_label_is_right_is_remembered_for_good(planted) -> None:
    project, where = planted
    found = planted_issues(project, where)
    for kind in KINDS:
        project.fix_label_issue(found[kind], "right", by="ana")
    # the predictions that disagreed were rejected (a decision each); the spurious label had none
    for kind in ("missing", "misplaced", "wrong_class"):
        assert project.prediction(found[kind].prediction_id).state is ReviewState.REJECTED
    root = project.root
    project.close()
    with Project.open(root) as again:
        left = {i.key for i in find_label_issues(again, min_score=0.0).issues}
        assert not left & {found[k].key for k in KINDS}
        report = find_label_issues(again, min_score=0.0)
        assert report.hidden >= 1  # the spurious label's issue, hidden by its verdict
        # a new model run: a fresh prediction of the object the verdict said is not there stays hidden
        (fresh,) = again.store_predictions(
            where.image_id, "another-model", "k", [Detection(where.missing_box, 0.97, None, 1)]
        )
        shown = find_label_issues(again, "another-model", min_score=0.0)
        assert all(i.prediction_id != fresh.id for i in shown.issues)


def test_undo_and_redo_of_a_verdict(planted) -> None:
    project, where = planted
    issue = planted_issues(project, where)["spurious"]
    check = project.fix_label_issue(issue, "right", by="ana")
    assert "spurious" not in planted_issues(project, where)
    undone = project.undo_label_check(check.id, by="bo")
    assert (undone.active, undone.undone_by) == (False, "bo")
    assert "spurious" in planted_issues(project, where)
    again = project.redo_label_check(check.id, by="bo")
    assert again.id != check.id and again.active and (again.kind, again.action) == ("spurious", "right")
    assert "spurious" not in planted_issues(project, where)
    assert [c.active for c in project.label_checks()] == [False, True]


def test_a_fix_that_does_not_apply_or_no_longer_holds_changes_nothing(planted) -> None:
    project, where = planted
    found = planted_issues(project, where)
    before = project.to_coco_dict("train")
    with pytest.raises(ProjectError, match="does not fix a spurious label"):
        project.fix_label_issue(found["spurious"], "add")
    with pytest.raises(ProjectError, match="does not fix a missing label"):
        project.fix_label_issue(found["missing"], "delete")
    project.decide(found["misplaced"].prediction_id, ReviewState.REJECTED)  # decided meanwhile
    with pytest.raises(ProjectError, match="no longer holds"):
        project.fix_label_issue(found["misplaced"], "geometry")
    project.decide(found["misplaced"].prediction_id, ReviewState.PENDING)
    assert project.to_coco_dict("train") == before
    assert project.label_checks() == []


def test_take_category_and_geometry_for_a_named_label(planted) -> None:
    project, where = planted
    found = planted_issues(project, where)
    wrong = found["wrong_class"]
    done = project.decide(
        wrong.prediction_id, ReviewState.ACCEPTED, take_category=True, label_id=where.wrong_class, note="why"
    )
    assert project.annotation(where.wrong_class).category_id == 1 and done.agrees_with == where.wrong_class
    (detail,) = project.db.read(
        "SELECT detail FROM decisions WHERE prediction_id = ? ORDER BY id DESC LIMIT 1",
        (wrong.prediction_id,),
    )[0:1]
    assert detail[0] == f"changed the category of annotation {where.wrong_class} from {HOLDER} to 1; why"
    with pytest.raises(ProjectError, match="category already"):
        project.decide(
            found["missing"].prediction_id, ReviewState.ACCEPTED, take_category=True, label_id=where.misplaced
        )
    with pytest.raises(ValueError, match="label_id"):
        project.decide(found["missing"].prediction_id, ReviewState.ACCEPTED, label_id=where.misplaced)


def test_choosing_the_model(tmp_path: Path) -> None:
    project, where = planted_project(tmp_path)
    try:
        project.store_predictions(where.image_id, "second", "k", [Detection((1, 1, 9, 9), 0.5, None, 1)])
        with pytest.raises(LabelIssuesError, match="2 models"):
            choose_model(project)
        with pytest.raises(LabelIssuesError, match="no predictions of model 'nope'"):
            choose_model(project, "nope")
        project.set_active_model("spec", "second", {})
        assert choose_model(project) == "second"
        assert choose_model(project, MODEL) == MODEL
    finally:
        project.close()


# --- the ledger table ---------------------------------------------------------------------------------


def test_a_schema_2_database_without_the_ledger_gets_it_on_open(planted) -> None:
    project, where = planted
    root = project.root
    project.close()
    with sqlite3.connect(root / "project.db") as conn:
        conn.execute("DROP TABLE label_checks")
    with Project.open(root) as again:
        assert again.label_checks() == []
        issue = planted_issues(again, where)["spurious"]
        again.fix_label_issue(issue, "right")
        assert len(again.label_checks()) == 1


def test_a_fix_is_announced_after_its_commit_and_not_at_all_when_it_fails(planted, monkeypatch) -> None:
    """Subscribers hear of a fix once it is committed (another connection sees it), never of a rolled-back one."""
    import fusereview.core.project_label_checks as checks_module

    project, where = planted
    found = planted_issues(project, where)
    seen: list[tuple[str, str]] = []
    with Project.open(project.root) as other:

        def follow(event) -> None:
            if event.kind == "decided":
                seen.append((event.kind, other.prediction(event.ids[0]).state.value))
            else:
                seen.append((event.kind, ""))

        project.events.connect(follow)
        project.fix_label_issue(found["misplaced"], "geometry")
        assert ("decided", "accepted") in seen, seen  # committed before it was announced
        assert seen[-1][0] == "label_checked"
        seen.clear()

        def broken() -> str:
            raise RuntimeError("disk gone")

        monkeypatch.setattr(checks_module, "now_utc", broken)
        with pytest.raises(RuntimeError):
            project.fix_label_issue(found["wrong_class"], "class")
        assert seen == [], "events of a rolled-back fix"
        assert project.prediction(found["wrong_class"].prediction_id).state is ReviewState.PENDING
        assert project.annotation(where.wrong_class).category_id == HOLDER
        assert len(project.label_checks()) == 1
