"""The "Label issues" mode of the review queue: walk the labels the model disagrees with, fix each by key.

The queue lists :func:`fusereview.core.label_issues.find_label_issues` (most likely first). The
item shown has its image on the canvas, the label selected (the prediction, for a missing label),
and both the label and the disagreeing prediction outlined (dashed, pink and cyan), so the
reviewer sees what disagrees with what. One key per fix (:data:`LABEL_ISSUE_KEYS`), each one undo
step on the project's stack (:class:`~fusereview.qt.label_issue_commands.LabelFixCommand`) and a
row of the ``label_checks`` ledger (ADR 0022); N, P and Space walk the issues while this mode is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from fusereview.core.label_issues import (
    KIND_NAMES,
    KIND_PLURALS,
    KINDS,
    LabelIssue,
    LabelIssuesError,
    choose_model,
    prediction_models,
)
from fusereview.core.project_label_checks import ACTION_NAMES, ACTIONS
from fusereview.qt.label_issue_commands import LabelFixCommand
from fusereview.qt.models.issue_queue import IssueQueueModel

if TYPE_CHECKING:
    from fusereview.core.events import Event
    from fusereview.qt.controller import ReviewController

#: (action, key, what it does): one key per fix, listed in the panel, the ? dialog and the README.
LABEL_ISSUE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("add", "I", "add the predicted object as a label (a missing label)"),
    ("delete", "U", "delete the label (a spurious label)"),
    ("geometry", "M", "move the label onto the prediction: take its box and mask (misplaced)"),
    ("class", "Y", "give the label the prediction's class (wrong class)"),
    ("right", "K", "keep: the label is right (remembered, never shown again; the prediction rejected)"),
)
#: The key that switches the review queue between pending predictions and label issues.
MODE_KEY = "L"
#: The key that shows the next kind's queue: every kind, then each kind alone (:data:`KIND_CYCLE`).
KIND_KEY = "Shift+L"
#: The key that asks the model about the box of each label no detection supports.
BOX_CHECK_KEY = "Shift+U"
KIND_CYCLE: tuple[str | None, ...] = (None, *KINDS)
LABEL_ISSUE_SHORTCUTS: list[tuple[str, str]] = [
    (MODE_KEY, "review queue: pending predictions ↔ label issues (labels the model disagrees with)"),
    (KIND_KEY, "label issues: every kind, or one kind at a time (each label scored for that kind)"),
    (
        BOX_CHECK_KEY,
        "label issues: ask the model about the box of each label no detection supports "
        "(an overlooked object, or a box on nothing?)",
    ),
    *((key, f"label issues: {text}") for _, key, text in LABEL_ISSUE_KEYS),
]
LABEL_COLOUR = "#ff4fd8"
PREDICTION_COLOUR = "#00e5ff"


def issue_marks(issue: LabelIssue | None) -> list[tuple[tuple[float, float, float, float], str, str]]:
    """The outlines of an issue on the canvas: ``(bbox xywh, colour, text)`` for the label and the prediction."""
    if issue is None:
        return []
    out = []
    what = f"{KIND_NAMES[issue.kind]} {issue.score:.2f}"
    pred = f"prediction {issue.prediction_score or 0:.2f}" if issue.prediction_box is not None else ""
    # one text, under the label: the two boxes are often side by side, two texts would overlap
    if issue.label_box is not None:
        x0, y0, x1, y1 = issue.label_box
        text = f"label: {what}" + (f" (cyan: {pred})" if pred else ", nothing the model sees")
        out.append(((x0, y0, x1 - x0, y1 - y0), LABEL_COLOUR, text))
    if issue.prediction_box is not None:
        x0, y0, x1, y1 = issue.prediction_box
        text = f"{what}: {pred}" if issue.label_box is None else ""
        out.append(((x0, y0, x1 - x0, y1 - y0), PREDICTION_COLOUR, text))
    return out


class LabelIssuesController(QObject):
    """Where the reviewer is in the label-issues queue, and what its keys do.

    It attaches itself to the review controller (``review.label_issues``), which closes it, and
    while active (``review.queue_mode``) N, P and Space come here.

    Signals
    -------
    marks_changed(list):
        Outlines for the canvas (:func:`issue_marks`), ``[]`` to clear them.
    state_changed():
        The queue, its model or its message changed (the panel redraws its header).
    """

    marks_changed = Signal(list)
    state_changed = Signal()

    def __init__(self, review: ReviewController) -> None:
        super().__init__()
        self.review = review
        self.project = review.project
        names = {img.id: img.file_name for img in review.image_model.images}
        cats = {c.id: c.name for c in review.categories}
        self.model = IssueQueueModel(self.project, names, cats)
        self.active = False
        self.row = 0
        self.problem = ""  # why there is nothing to show (no predictions, ...)
        # set by the Review workspace: the model's interactive head and the window's job runner
        self.segmenter: Any = None
        self.segmenter_why = "no model loaded: load one to ask it about label boxes"
        self.runner: Any = None
        self.box_job: Any = None
        self._closed = False
        review.label_issues = self
        review.session.events.connect(self._on_event)
        self._index = review.stack.index()
        review.stack.indexChanged.connect(self._stack_moved)

    def close(self) -> None:
        """Stop following the project (and a running box check)."""
        self._closed = True
        if self.box_job is not None:
            self.box_job.request_stop()
        try:
            self.review.session.events.disconnect(self._on_event)
        except ValueError:
            pass
        try:
            self.review.stack.indexChanged.disconnect(self._stack_moved)
        except (RuntimeError, TypeError):  # the stack went first (window teardown)
            pass

    # --- the model whose issues are shown ---------------------------------------------------
    def models(self) -> list[tuple[str, int]]:
        """Model fingerprints with predictions in the project (and how many)."""
        return prediction_models(self.project)

    def default_model(self) -> str | None:
        """The active model's, or the only model's; with several and none active, the one with most predictions."""
        try:
            return choose_model(self.project)
        except LabelIssuesError as exc:
            models = self.models()
            self.problem = "" if models else str(exc)
            return models[0][0] if models else None

    def set_model(self, fingerprint: str | None, min_score: float | None = None) -> None:
        """Score the project with another model's predictions (or another minimum score)."""
        self.model.set_model(fingerprint, min_score)
        self.row = 0
        if self.active:
            self.go_to_row(0)
        self.state_changed.emit()

    def set_kind(self, kind: str | None) -> None:
        """Show one kind's queue (``None``: every kind), from its first issue, and say so."""
        self.model.set_kind(kind)
        self.row = 0
        short = "every kind" if kind is None else f"{kind.replace('_', ' ')} only"
        shown = not self.active or self.go_to_row(0, prefix=f"{short} · ")
        if not shown and kind is not None and not self.model.problem:
            self.review.message.emit(
                f"no {KIND_PLURALS[kind]} at or above the minimum score ({KIND_KEY} for the next kind)"
            )
        self.state_changed.emit()

    def cycle_kind(self) -> None:
        """The next kind's queue (Shift+L): every kind, missing, spurious, misplaced, wrong class."""
        at = KIND_CYCLE.index(self.model.kind)
        self.set_kind(KIND_CYCLE[(at + 1) % len(KIND_CYCLE)])

    # --- asking the model about label boxes ------------------------------------------------------
    def set_segmenter(self, segmenter: Any, why: str = "") -> None:
        """The loaded model's interactive head (``None``: none, ``why`` says why)."""
        self.segmenter = segmenter
        self.segmenter_why = why or "the model has no interactive head"
        self.state_changed.emit()

    def check_boxes(self) -> bool:
        """Ask the model about the box of each label the spurious queue lists (Shift+U), in the background.

        A label no detection supports is an object the model overlooked or a box on nothing; the
        interactive head, prompted with the box, tells which (:mod:`fusereview.models.box_check`).
        Returns whether a check started.
        """
        if self.box_job is not None:
            self.review.message.emit("the label boxes are being checked already")
            return False
        if self.segmenter is None or self.runner is None:
            self.review.message.emit(f"cannot ask the model about label boxes: {self.segmenter_why}")
            return False
        if self.model.model is None:
            self.review.message.emit(
                self.model.problem or self.problem or "no predictions to compare the labels with"
            )
            return False
        from fusereview.qt.workers import BoxCheckJob

        job = BoxCheckJob(self.project.root, self.segmenter, self.model.model)
        job.progress.connect(self._box_progress)
        job.finished.connect(self._boxes_checked)
        job.failed.connect(self._box_check_failed)
        self.box_job = job
        self.review.message.emit("asking the model about the boxes of the labels no detection supports…")
        self.runner.start(job)
        self.state_changed.emit()
        return True

    def _box_progress(self, done: int, total: int) -> None:
        self.review.message.emit(f"asking the model about label boxes: {done}/{total}")

    def _boxes_checked(self, support: dict[int, float]) -> None:
        self.box_job = None
        if self._closed:  # the project was closed while the check ran: its answers go with it
            return
        self.model.set_box_support(support)
        found = sum(1 for v in support.values() if v >= 0.5)
        if self.active:
            self.go_to_row(0)
        self.review.message.emit(
            f"asked the model about {len(support)} label boxes no detection supports: it finds an object in "
            f"{found} (likely overlooked, not spurious), nothing in {len(support) - found} (likely spurious)"
        )
        self.state_changed.emit()

    def _box_check_failed(self, why: str) -> None:
        self.box_job = None
        self.review.message.emit(f"asking the model about label boxes failed: {why}")
        self.state_changed.emit()

    # --- the mode ---------------------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        """Make label issues the review queue's mode (scores the project the first time)."""
        self.active = on
        self.review.queue_mode = self if on else None
        if not on:
            self.marks_changed.emit([])
            self.state_changed.emit()
            return
        if not self.model.scored:
            self.model.set_model(self.model.model or self.default_model())
        self.go_to_row(self.row)
        self.state_changed.emit()

    # --- navigation -------------------------------------------------------------------------------
    def current(self) -> LabelIssue | None:
        """The issue at the current row."""
        return self.model.item(self.row)

    def go_to_row(self, row: int, prefix: str = "") -> bool:
        """Show the issue of a row (clamped); False when the queue is empty (``prefix``: of the message)."""
        n = self.model.rowCount()
        if n == 0:
            self.marks_changed.emit([])
            why = (
                self.model.problem
                or self.problem
                or "no label issues at or above the minimum score: every label agrees with the model"
            )
            self.review.message.emit(why)
            return False
        self.row = min(max(row, 0), n - 1)
        issue = self.model.issues[self.row]
        self.review.open_image(issue.image_id, issue.key)
        self.marks_changed.emit(issue_marks(issue))
        keys = " ".join(f"{k} {ACTION_NAMES[a]}" for a, k, _ in LABEL_ISSUE_KEYS if a in ACTIONS[issue.kind])
        self.review.message.emit(
            f"{prefix}{self.row + 1}/{n} {KIND_NAMES[issue.kind]} {issue.score:.2f}: {self.model.describe(issue)} — {keys}"
        )
        self.state_changed.emit()
        return True

    def _at_row(self) -> bool:
        issue = self.current()
        return issue is not None and self.review.selected == issue.key

    def next(self) -> bool:
        """The next issue (N, Space); after a fix, the one that took the fixed one's place."""
        return self.go_to_row(self.row + 1 if self._at_row() else self.row)

    def previous(self) -> bool:
        """The previous issue (P)."""
        return self.go_to_row(self.row - 1)

    # --- fixes ------------------------------------------------------------------------------------
    def fix(self, action: str) -> bool:
        """Fix the current issue by one of its actions (one undo step); False when refused."""
        key = next(k for a, k, _ in LABEL_ISSUE_KEYS if a == action)
        if not self.active:
            self.review.message.emit(
                f"{key} ({ACTION_NAMES[action]}) acts on the Label issues queue: {MODE_KEY} switches to it"
            )
            return False
        issue = self.current()
        if issue is None or not self._at_row():
            self.review.message.emit(f"no label issue shown for {key}: N goes to the next one")
            return False
        if action not in ACTIONS[issue.kind]:
            keys = ", ".join(
                f"{k} ({ACTION_NAMES[a]})" for a, k, _ in LABEL_ISSUE_KEYS if a in ACTIONS[issue.kind]
            )
            self.review.message.emit(
                f"{key} ({ACTION_NAMES[action]}) does not fix a {KIND_NAMES[issue.kind]}: {keys} do (nothing changed)"
            )
            return False
        assert self.model.model is not None
        cmd = LabelFixCommand(self.review.ops, issue, action, self.model.model)
        row = self.row
        if not self.review.push(cmd, done=""):
            return False
        self.go_to_row(row)  # the fixed issue is gone: the next one took its place
        detail = cmd.check.detail if cmd.check is not None else cmd.text()
        self.review.message.emit(f"{ACTION_NAMES[action]}: {detail} (Ctrl+Z to undo)")
        return True

    # --- following the project -------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self.model.on_event(event)
        if not self.active:
            return
        issue = self.current()
        if issue is not None and self.review.selected == issue.key:
            return
        # the shown issue moved or went: follow it, or clear its outlines until N shows the next
        key = self.review.selected
        row = self.model.row_of(key) if key is not None else None
        if row is not None:
            self.row = row
            self.marks_changed.emit(issue_marks(self.model.issues[row]))
        else:
            self.marks_changed.emit([])
        self.state_changed.emit()

    def _stack_moved(self, index: int) -> None:
        """After an undo of a fix, its issue is back in the queue: show it."""
        undone = index < self._index
        self._index = index
        cmd: Any = self.review.stack.command(index) if undone else None
        if not self.active or not isinstance(cmd, LabelFixCommand):
            return
        row = self.model.row_of(cmd.issue.key)
        if row is not None:
            self.go_to_row(row)
