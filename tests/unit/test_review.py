"""The review session: the queue, decisions through the session, and the events views subscribe to."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_project import box_mask, make_project

from fusereview.core.events import Event, EventHub
from fusereview.core.project import Project
from fusereview.core.records import Detection, ReviewState
from fusereview.core.review import QueueItem, ReviewSession


@pytest.fixture
def session(tmp_path: Path) -> ReviewSession:
    project = make_project(tmp_path)
    scores = {0: [0.9, 0.2], 1: [0.5], 4: [0.7, 0.31]}  # image index -> detection scores
    images = project.images()
    for index, image_scores in scores.items():
        dets = [
            # away from the ground truth (which lies at y < 24): no prediction matches a label
            Detection((44, 40, 54, 50), s, box_mask(44, 40, 54, 50), 1, "fuse neutrals")
            for s in image_scores
        ]
        project.store_predictions(images[index].id, "m1", "k", dets)
    s = ReviewSession(project, reviewer="ana")
    yield s
    project.close()


def test_queue_lowest_score_first_across_the_dataset(session: ReviewSession) -> None:
    items = session.queue()
    assert [i.score for i in items] == [0.2, 0.31, 0.5, 0.7, 0.9]
    assert all(isinstance(i, QueueItem) for i in items)
    assert [i.score for i in session.queue("score_desc")] == [0.9, 0.7, 0.5, 0.31, 0.2]
    by_image = session.queue("image")
    assert [i.image_id for i in by_image] == sorted(i.image_id for i in by_image)
    with pytest.raises(ValueError, match="unknown queue order"):
        session.queue("random")


def test_queue_filters(session: ReviewSession) -> None:
    project = session.project
    valid_image = project.images("valid")[0].id  # image index 4 is the first of valid
    assert [i.image_id for i in session.queue(split="valid")] == [valid_image, valid_image]
    assert [i.score for i in session.queue(score_min=0.3, score_max=0.7)] == [0.31, 0.5, 0.7]
    assert session.queue(category_id=2) == []
    assert len(session.queue(model="m1")) == 5 and session.queue(model="m2") == []
    first = session.queue()[0]
    session.accept(first.prediction_id)
    assert first not in session.queue()
    assert session.queue(states=[ReviewState.ACCEPTED]) == [first]
    assert len(session.queue(states=("pending", "accepted"))) == 5
    assert session.queue(states=()) == []


def test_session_decisions_record_the_reviewer(session: ReviewSession) -> None:
    low, mid, *_ = session.queue()
    accepted = session.accept(low.prediction_id)
    assert accepted.state is ReviewState.ACCEPTED and accepted.decided_by == "ana"
    assert session.reject(mid.prediction_id).state is ReviewState.REJECTED
    assert session.reset(low.prediction_id).state is ReviewState.PENDING
    assert session.project.prediction(low.prediction_id).annotation_id is None


def test_set_category_and_edit_mark_edited(session: ReviewSession) -> None:
    item = session.queue()[0]
    edited = session.edit(item.prediction_id, box=(0, 0, 10, 10), mask=box_mask(1, 1, 9, 9))
    assert edited.state is ReviewState.EDITED
    ann = session.project.annotation(edited.annotation_id)
    assert ann.bbox == (1.0, 1.0, 8.0, 8.0) and ann.area == 64.0  # the mask's: box and mask agree
    recat = session.set_category(item.prediction_id, 1)
    assert recat.state is ReviewState.EDITED and recat.annotation_id == edited.annotation_id
    with pytest.raises(ValueError, match="box or a mask"):
        session.edit(item.prediction_id)


def test_accept_above_and_reject_below_one_image(session: ReviewSession) -> None:
    image = session.project.images()[0].id  # scores 0.9 and 0.2
    assert len(session.accept_above(image, 0.5)) == 1
    rejected = session.reject_below(image, 0.5)
    assert len(rejected) == 1
    states = sorted((p.score, p.state) for p in session.project.predictions(image))
    assert states == [(0.2, ReviewState.REJECTED), (0.9, ReviewState.ACCEPTED)]
    assert session.accept_above(image, 0.0) == []  # nothing pending left
    with pytest.raises(KeyError):
        session.accept_above(12345, 0.5)


def test_events_tell_views_after_commit(session: ReviewSession) -> None:
    seen: list[tuple[Event, str]] = []
    project: Project = session.project

    def on_event(event: Event) -> None:
        # a subscriber reading the database sees the change: it was committed first
        if event.kind == "decided":
            seen.append((event, project.prediction(event.ids[0]).state.value))
        else:
            seen.append((event, ""))

    session.events.connect(on_event)
    item = session.queue()[0]
    (twin,) = [p for p in project.predictions(item.image_id) if p.id != item.prediction_id]
    pred = session.accept(item.prediction_id)
    assert seen == [
        (Event("decided", (item.prediction_id,)), "accepted"),
        (Event("annotation_changed", (pred.annotation_id,)), ""),
        # the other prediction of the same object now matches the new annotation
        (Event("matches_changed", (twin.id,)), ""),
    ]
    assert project.prediction(twin.id).match_annotation_id == pred.annotation_id
    seen.clear()
    added = project.store_predictions(
        project.images()[2].id, "m1", "k", [Detection((0, 0, 2, 2), 0.5, None, 1)]
    )
    assert seen == [(Event("predictions_added", (added[0].id,)), "")]
    session.events.disconnect(on_event)
    session.reject(item.prediction_id)
    assert len(seen) == 1


def test_event_hub_tells_everyone_and_logs_a_failing_subscriber(caplog: pytest.LogCaptureFixture) -> None:
    # the change is committed before the event: a view bug must not reach the writer (an undo
    # command would report a failure for a change that happened), but it must not be hidden either
    hub = EventHub()
    heard: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("view bug")

    hub.connect(broken)
    hub.connect(lambda e: heard.append(e.kind))
    with caplog.at_level("ERROR", logger="fusereview.core.events"):
        hub.emit(Event("decided", (1,)))
    assert heard == ["decided"]
    assert any("view bug" in (r.exc_text or "") or "view bug" in str(r.exc_info) for r in caplog.records)
    with pytest.raises(ValueError, match="unknown event kind"):
        Event("exploded")
