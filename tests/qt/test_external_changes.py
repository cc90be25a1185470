"""The window follows writes made by another process or connection (a CLI predict, a second window)."""

from __future__ import annotations

from gui_samples import MODEL

from fusereview.core.project import Project
from fusereview.core.records import Detection, ReviewState


def test_decision_from_another_connection_reaches_queue_and_image_list(window) -> None:
    c = window.controller
    assert not window.poll_external_changes()  # nothing new yet
    rows = c.queue_model.rowCount()
    pid = c.queue_model.items[0].prediction_id
    image_id = window.project.prediction(pid).image_id
    with Project.open(window.project.root) as other:  # its own connection, as another process has
        other.decide(pid, ReviewState.ACCEPTED, by="cli")
    assert c.queue_model.rowCount() == rows, "no event crosses connections: only the poll finds it"
    assert window.poll_external_changes()
    assert c.queue_model.rowCount() == rows - 1 and c.queue_model.row_of(pid) is None
    assert c.image_model.counts[image_id]["accepted"] == 1


def test_superseded_predictions_leave_the_queue(window) -> None:
    c = window.controller
    image = window.project.images()[0]
    old = [p.id for p in window.project.predictions(image_id=image.id) if p.state == ReviewState.PENDING]
    assert old and all(c.queue_model.row_of(p) is not None for p in old)
    cat = window.project.categories()[0].id
    with Project.open(window.project.root) as other:  # a newer model run finds nothing on this image
        other.store_predictions(image.id, MODEL + "-v2", "k2", [], category_id=cat)
    assert window.poll_external_changes()
    assert all(c.queue_model.row_of(p) is None for p in old)
    # a view that still held one of them finds a clear state, not a crash
    window.controller.refresh()


def test_superseded_event_in_this_process_removes_rows(window) -> None:
    c = window.controller
    image = window.project.images()[1]
    old = [p.id for p in window.project.predictions(image_id=image.id) if p.state == ReviewState.PENDING]
    cat = window.project.categories()[0].id
    det = Detection((1.0, 1.0, 9.0, 9.0), 0.5, None, cat, "fuse neutrals")
    new = window.project.store_predictions(image.id, MODEL + "-v2", "k3", [det], category_id=cat)
    assert all(c.queue_model.row_of(p) is None for p in old)
    assert c.queue_model.row_of(new[0].id) is not None
