"""A review session: the queue of predictions to look at, and the decisions taken on them.

The session keeps no state of its own beyond the reviewer's name: the queue is a query, every
decision is a transaction of the project (committed before the call returns), and the events
come from the project's hub (so a view hears of changes made through any path, undo included).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from fusereview.core.events import EventHub
from fusereview.core.project import Project
from fusereview.core.records import RLE, Prediction, ReviewState

#: Queue orders: lowest score first (the doubtful ones), highest first, or image by image.
ORDERS: dict[str, str] = {
    "score_asc": "p.score ASC, p.id ASC",
    "score_desc": "p.score DESC, p.id ASC",
    "image": "p.image_id ASC, p.score DESC, p.id ASC",
}


class QueueItem(NamedTuple):
    """One entry of the review queue.

    A named tuple rather than a frozen dataclass: the queue may hold 100,000 items and is rebuilt
    whenever the filter changes; SQLite's row tuples become items at C speed (half the time of
    the whole query), and the item is just as immutable, with the same attributes.
    """

    prediction_id: int
    image_id: int
    score: float
    category_id: int
    #: The annotation a pending prediction matches (core.matching), or ``None``.
    match_annotation_id: int | None = None


class ReviewSession:
    """Review decisions of one reviewer on one project.

    Parameters
    ----------
    project:
        The open project.
    reviewer:
        Recorded as ``decided_by`` with every decision.
    """

    def __init__(self, project: Project, reviewer: str = "") -> None:
        self.project = project
        self.reviewer = reviewer

    @property
    def events(self) -> EventHub:
        """The project's event hub (``decided``, ``annotation_changed``, ...)."""
        return self.project.events

    def queue(
        self,
        order: str = "score_asc",
        *,
        split: str | None = None,
        category_id: int | None = None,
        score_min: float = 0.0,
        score_max: float = 1.0,
        states: Iterable[ReviewState | str] = (ReviewState.PENDING,),
        model: str | None = None,
        matched: bool | None = None,
    ) -> list[QueueItem]:
        """The predictions to review, across the whole project, as one indexed query.

        Parameters
        ----------
        order:
            ``"score_asc"`` (default: least certain first), ``"score_desc"`` or ``"image"``.
        split, category_id, model:
            Keep only predictions of this split / category / model.
        score_min, score_max:
            Inclusive score range.
        states:
            Review states to include (default: pending only).
        matched:
            ``False``: only predictions that match no annotation (what a reviewer must decide on a
            labelled dataset); ``True``: only those that do; ``None`` (default): both.
        """
        if order not in ORDERS:
            raise ValueError(f"unknown queue order {order!r}; expected one of {sorted(ORDERS)}")
        state_values = [ReviewState(s).value for s in states]
        if not state_values:
            return []
        sql = "SELECT p.id, p.image_id, p.score, p.category_id, p.match_annotation_id FROM predictions p"
        where = [f"p.state IN ({','.join('?' * len(state_values))})", "p.score BETWEEN ? AND ?"]
        params: list[Any] = [*state_values, float(score_min), float(score_max)]
        if split is not None:
            sql += " JOIN images i ON i.id = p.image_id"
            where.append("i.split = ?")
            params.append(split)
        if category_id is not None:
            where.append("p.category_id = ?")
            params.append(category_id)
        if model is not None:
            where.append("p.model = ?")
            params.append(model)
        if matched is not None:
            where.append("p.match_annotation_id IS NOT NULL" if matched else "p.match_annotation_id IS NULL")
        rows = self.project.db.read(f"{sql} WHERE {' AND '.join(where)} ORDER BY {ORDERS[order]}", params)
        return list(map(QueueItem._make, rows))

    def accept(self, prediction_id: int) -> Prediction:
        """Accept a prediction as it is: it becomes an annotation, or agrees with the one it matches."""
        return self.project.decide(prediction_id, ReviewState.ACCEPTED, by=self.reviewer)

    def reject(self, prediction_id: int) -> Prediction:
        """Reject a prediction (its annotation, if it had one, is removed)."""
        return self.project.decide(prediction_id, ReviewState.REJECTED, by=self.reviewer)

    def reset(self, prediction_id: int) -> Prediction:
        """Put a prediction back in the queue (undo of a decision)."""
        return self.project.decide(prediction_id, ReviewState.PENDING, by=self.reviewer)

    def set_category(self, prediction_id: int, category_id: int) -> Prediction:
        """Accept a prediction under another category (state ``EDITED``)."""
        return self.project.decide(
            prediction_id, ReviewState.EDITED, by=self.reviewer, category_id=category_id
        )

    def edit(
        self, prediction_id: int, *, box: Any = None, mask: RLE | None = None, box_only: bool = False
    ) -> Prediction:
        """Accept a prediction with a corrected box (xyxy) and/or mask, or as box only (``EDITED``).

        Box and mask stay together (:meth:`Project.decide`): a new box moves or clips the mask,
        a new mask gives the box.
        """
        if box is None and mask is None and not box_only:
            raise ValueError("edit needs a box or a mask")
        return self.project.decide(
            prediction_id, ReviewState.EDITED, by=self.reviewer, box=box, mask=mask, box_only=box_only
        )

    def take_geometry(self, prediction_id: int) -> Prediction:
        """Replace the geometry of the annotation a prediction matches with the prediction's (accepted)."""
        return self.project.decide(prediction_id, ReviewState.ACCEPTED, by=self.reviewer, take_geometry=True)

    def _pending_of_image(self, image_id: int) -> list[tuple[int, float]]:
        self.project.image(image_id)  # unknown image: a clear error, not an empty list
        return [
            (pid, score)
            for pid, score in self.project.db.read(
                "SELECT id, score FROM predictions WHERE image_id = ? AND state = 'pending' ORDER BY id",
                (image_id,),
            )
        ]

    def accept_above(self, image_id: int, threshold: float) -> list[int]:
        """Accept every pending prediction of an image scoring ``>= threshold`` (one transaction)."""
        ids = [pid for pid, score in self._pending_of_image(image_id) if score >= threshold]
        if ids:
            self.project.decide_many(ids, ReviewState.ACCEPTED, by=self.reviewer)
        return ids

    def reject_below(self, image_id: int, threshold: float) -> list[int]:
        """Reject every pending prediction of an image scoring ``< threshold`` (one transaction)."""
        ids = [pid for pid, score in self._pending_of_image(image_id) if score < threshold]
        if ids:
            self.project.decide_many(ids, ReviewState.REJECTED, by=self.reviewer)
        return ids
