"""Fixing label issues: one fix per issue, through the project's own decision and edit paths.

Every fix of a :class:`~fusereview.core.label_issues.LabelIssue` is one transaction that does
what the reviewer's keys already do and writes one row of the ``label_checks`` ledger (who, when,
which issue, what was done; ADR 0022):

========  ==========================================  =======================================
action    what it does                                through
========  ==========================================  =======================================
add       the prediction becomes an annotation        ``decide(ACCEPTED)``
delete    the label is deleted (soft, undoable)       ``delete_annotation``
geometry  the label takes the prediction's geometry   ``decide(ACCEPTED, take_geometry, label_id)``
class     the label takes the prediction's category   ``decide(ACCEPTED, take_category, label_id)``
right     "label is right": remembered for good,      ``decide(REJECTED)`` when a pending
          and the disagreeing prediction rejected     prediction disagreed
========  ==========================================  =======================================

A fix that goes through a prediction is also a decision in the ``decisions`` history, its detail
naming the issue ("label issue: misplaced box or mask (0.83): ..."). A fix without one (deleting
a spurious label nothing predicted, a verdict on it) has its ledger row as its record. Undo marks
the row undone (``undone_at``/``undone_by``); redo writes a new row, so the ledger reads as what
happened, in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusereview.core.events import Event, EventHub
from fusereview.core.project_records import dumps
from fusereview.core.project_schema import Database, ProjectError, UnknownIdError, has_table, now_utc
from fusereview.core.records import ReviewState

if TYPE_CHECKING:
    from fusereview.core.label_issues import LabelIssue
    from fusereview.core.project import Project

#: Which fixes apply to which kind of issue.
ACTIONS: dict[str, tuple[str, ...]] = {
    "missing": ("add", "right"),
    "spurious": ("delete", "right"),
    "misplaced": ("geometry", "add", "delete", "right"),
    "wrong_class": ("class", "add", "delete", "right"),
}
ACTION_NAMES = {
    "add": "add the predicted object",
    "delete": "delete the label",
    "geometry": "take the prediction's geometry",
    "class": "take the prediction's class",
    "right": "label is right",
}
_COLUMNS = (
    "id, image_id, annotation_id, prediction_id, kind, action, category_id, box, score, model,"
    " decided_by, decided_at, detail, undone_at, undone_by"
)


@dataclass(frozen=True)
class LabelCheck:
    """One row of the ledger: a fix or a "label is right" verdict."""

    id: int
    image_id: int
    annotation_id: int | None
    prediction_id: int | None
    kind: str
    action: str
    category_id: int | None
    box: tuple[float, float, float, float] | None
    score: float
    model: str
    decided_by: str
    decided_at: str
    detail: str
    undone_at: str = ""
    undone_by: str = ""

    @property
    def active(self) -> bool:
        """Not undone."""
        return not self.undone_at


def _check_from_row(row: tuple) -> LabelCheck:
    box = json.loads(row[7]) if row[7] else None
    return LabelCheck(*row[:7], tuple(box) if box else None, *row[8:])  # type: ignore[arg-type]


def verdicts(
    project: Project, image_ids: Iterable[int] | None = None
) -> tuple[set[int], dict[int, list[tuple[int, tuple[float, float, float, float]]]]]:
    """Active "label is right" verdicts: annotation ids, and per image the (category, box) of missing ones."""
    anns: set[int] = set()
    boxes: dict[int, list[tuple[int, tuple[float, float, float, float]]]] = {}
    wanted = None if image_ids is None else set(image_ids)
    for check in project.label_checks(include_undone=False):
        if check.action != "right" or (wanted is not None and check.image_id not in wanted):
            continue
        if check.annotation_id is not None:
            anns.add(check.annotation_id)
        elif check.box is not None and check.category_id is not None:
            boxes.setdefault(check.image_id, []).append((check.category_id, check.box))
    return anns, boxes


class LabelChecksMixin:
    """The label-issue methods of :class:`~fusereview.core.project.Project` (see there)."""

    # provided by Project
    root: Path
    events: EventHub
    _db: Database

    def label_checks(self, image_id: int | None = None, *, include_undone: bool = True) -> list[LabelCheck]:
        """The ledger of label-issue fixes and verdicts, oldest first."""
        with self._db.lock:
            if not has_table(self._db.conn, "label_checks"):
                return []  # a read-only development database that predates the table
        where, params = [], []
        if image_id is not None:
            where.append("image_id = ?")
            params.append(image_id)
        if not include_undone:
            where.append("undone_at = ''")
        sql = f"SELECT {_COLUMNS} FROM label_checks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_check_from_row(r) for r in self._db.read(sql + " ORDER BY id", params)]

    def label_check(self, check_id: int) -> LabelCheck:
        """One ledger row; :class:`UnknownIdError` when there is none."""
        row = self._db.read_one(f"SELECT {_COLUMNS} FROM label_checks WHERE id = ?", (check_id,))
        if row is None:
            raise UnknownIdError(f"project {self.root.name} has no label check with id {check_id}")
        return _check_from_row(row)

    def fix_label_issue(self, issue: LabelIssue, action: str, *, by: str = "", model: str = "") -> LabelCheck:
        """Fix one label issue (see the module docstring); one transaction, committed on return.

        Parameters
        ----------
        issue:
            The issue, as :func:`~fusereview.core.label_issues.find_label_issues` found it.
        action:
            One of ``ACTIONS[issue.kind]``.
        by:
            The reviewer (recorded in the ledger and the decisions).
        model:
            The model fingerprint the issue was found with (recorded).

        Raises
        ------
        ProjectError
            The action does not apply to this kind, or the issue no longer holds (its label was
            deleted, its prediction decided meanwhile); nothing is changed.
        """
        from fusereview.core.label_issues import KIND_NAMES

        if action not in ACTIONS.get(issue.kind, ()):
            allowed = ", ".join(ACTION_NAMES[a] for a in ACTIONS.get(issue.kind, ()))
            raise ProjectError(
                f"'{ACTION_NAMES.get(action, action)}' does not fix a {KIND_NAMES.get(issue.kind, issue.kind)}"
                f" (what does: {allowed})"
            )
        note = f"label issue: {KIND_NAMES[issue.kind]} ({issue.score:.2f}): {ACTION_NAMES[action]}"
        # the decision's events wait for this transaction's commit (and are dropped if it rolls back)
        with self.events.hold(), self._db.write() as conn:
            if not has_table(conn, "label_checks"):
                raise ProjectError(f"project {self.root.name}: its database cannot be written (read-only?)")
            ann_id, detail = self._apply_fix(issue, action, by, note)
            cur = conn.execute(
                f"INSERT INTO label_checks ({_COLUMNS.split(', ', 1)[1]}) VALUES ({', '.join('?' * 14)})",
                (
                    issue.image_id,
                    ann_id,
                    issue.prediction_id,
                    issue.kind,
                    action,
                    issue.category_id if issue.kind != "missing" else issue.prediction_category_id,
                    dumps(list(issue.prediction_box)) if issue.prediction_box is not None else None,
                    float(issue.score),
                    model,
                    by,
                    now_utc(),
                    detail,
                    "",
                    "",
                ),
            )
            check_id = int(cur.lastrowid or 0)
            self.events.emit(Event("label_checked", (check_id,)))  # held: emitted after the commit
        return self.label_check(check_id)

    def _apply_fix(self, issue: LabelIssue, action: str, by: str, note: str) -> tuple[int | None, str]:
        """Do the fix inside the caller's transaction; returns (the annotation it is about, what was done)."""
        project: Any = self
        label = project.annotation(issue.annotation_id) if issue.annotation_id is not None else None
        pred = None
        if issue.prediction_id is not None:
            pred = project.prediction(issue.prediction_id)
        needs_pending = action in ("add", "geometry", "class") or (
            action == "right" and issue.kind != "spurious"
        )
        if needs_pending and pred is not None and ReviewState(pred.state) is not ReviewState.PENDING:
            raise ProjectError(
                f"prediction {pred.id} was {pred.state.value} meanwhile: the issue no longer holds (nothing changed)"
            )
        if action in ("add", "geometry", "class") and pred is None:
            raise ProjectError("this issue has no prediction to take from: nothing changed")
        if action == "add":
            assert pred is not None
            if pred.match_kind:
                raise ProjectError(
                    f"prediction {pred.id} matches annotation {pred.match_annotation_id}: the object is labelled "
                    "(take its geometry instead): nothing changed"
                )
            done = project.decide(pred.id, ReviewState.ACCEPTED, by=by, note=note)
            return done.annotation_id, f"added prediction {pred.id} as annotation {done.annotation_id}"
        if action in ("delete", "geometry", "class") and label is None:
            raise ProjectError("this issue has no label to change: nothing changed")
        assert label is not None or action == "right"
        if action == "delete":
            assert label is not None
            project.delete_annotation(label.id, by=by)
            return label.id, f"deleted annotation {label.id}"
        if action == "geometry":
            assert pred is not None and label is not None
            project.decide(
                pred.id, ReviewState.ACCEPTED, by=by, take_geometry=True, label_id=label.id, note=note
            )
            return label.id, f"annotation {label.id} took prediction {pred.id}'s geometry"
        if action == "class":
            assert pred is not None and label is not None
            project.decide(
                pred.id, ReviewState.ACCEPTED, by=by, take_category=True, label_id=label.id, note=note
            )
            return label.id, (
                f"annotation {label.id}: category {label.category_id} -> {pred.category_id} "
                f"(prediction {pred.id})"
            )
        # right: the label stays; the prediction that disagreed with it is wrong
        detail = "label is right"
        if issue.kind != "spurious" and pred is not None:
            project.decide(pred.id, ReviewState.REJECTED, by=by, note=note)
            detail += f"; rejected prediction {pred.id}"
        return (label.id if label is not None else None), detail

    def undo_label_check(self, check_id: int, *, by: str = "") -> LabelCheck:
        """Mark a ledger row undone (the undo of its fix; the fix's own changes are undone by the caller)."""
        with self._db.write() as conn:
            found = conn.execute(
                "UPDATE label_checks SET undone_at = ?, undone_by = ? WHERE id = ? AND undone_at = '' RETURNING id",
                (now_utc(), by, check_id),
            ).fetchone()
        if found is None:
            self.label_check(check_id)  # unknown id: a clear error
        self.events.emit(Event("label_checked", (check_id,)))
        return self.label_check(check_id)

    def redo_label_check(self, check_id: int, *, by: str = "") -> LabelCheck:
        """Record an undone fix again (its redo): a new ledger row with the same issue, action and detail."""
        old = self.label_check(check_id)
        with self._db.write() as conn:
            cur = conn.execute(
                f"INSERT INTO label_checks ({_COLUMNS.split(', ', 1)[1]})"
                f" SELECT {_COLUMNS.split(', ', 1)[1].replace('decided_by, decided_at', '?, ?')}"
                " FROM label_checks WHERE id = ?",
                (by, now_utc(), old.id),
            )
            conn.execute(
                "UPDATE label_checks SET undone_at = '', undone_by = '' WHERE id = ?", (cur.lastrowid,)
            )
            new_id = int(cur.lastrowid or 0)
        self.events.emit(Event("label_checked", (new_id,)))
        return self.label_check(new_id)
