"""The undo command of a label-issue fix: one fix, one step on the project's undo stack.

The fix itself is :meth:`Project.fix_label_issue` (one transaction: the decision or edit it makes
plus its ``label_checks`` row). Undo brings the prediction and the label back to their snapshots
through the same calls every review command uses (:class:`~fusereview.qt.commands.ReviewOps`,
``restore_annotation``) and marks the ledger row undone; redo makes the same fix again (an added
label comes back with the same id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusereview.core.label_issues import KIND_NAMES
from fusereview.core.project_label_checks import ACTION_NAMES, LabelCheck
from fusereview.qt.commands import ReviewCommand, ReviewOps

if TYPE_CHECKING:
    from fusereview.core.label_issues import LabelIssue
    from fusereview.core.project import Project
    from fusereview.core.records import Annotation, Prediction


class LabelFixCommand(ReviewCommand):
    """Fix one label issue (``action`` one of ``project_label_checks.ACTIONS[issue.kind]``)."""

    def __init__(self, ops: ReviewOps, issue: LabelIssue, action: str, model: str) -> None:
        what = (
            f"ann {issue.annotation_id}"
            if issue.annotation_id is not None
            else f"prediction {issue.prediction_id}"
        )
        super().__init__(
            f"{ACTION_NAMES.get(action, action)}: {KIND_NAMES.get(issue.kind, issue.kind)}, {what}"
        )
        self.ops = ops
        self.issue = issue
        self.action = action
        self.model = model
        # the review controller shows the prediction an undo touched: only when the issue is about
        # one (a missing label); for a label, the label-issues queue shows it (selecting the label)
        self.pid = issue.prediction_id if issue.annotation_id is None else None
        self.check: LabelCheck | None = None
        self.pred_before: tuple[Prediction, Annotation | None] | None = None
        self.pred_after: tuple[Prediction, Annotation | None] | None = None
        self.label_before: Annotation | None = None

    @property
    def project(self) -> Project:
        """The project the fix is made in."""
        return self.ops.project

    def first(self) -> None:
        issue = self.issue
        if issue.prediction_id is not None:
            self.pred_before = self.ops.snapshot(issue.prediction_id)
        if issue.annotation_id is not None:
            self.label_before = self.project.annotation(issue.annotation_id)
        self.check = self.project.fix_label_issue(
            issue, self.action, by=self.ops.session.reviewer, model=self.model
        )
        if issue.prediction_id is not None:
            self.pred_after = self.ops.snapshot(issue.prediction_id)

    def undo(self) -> None:
        assert self.check is not None
        if self.pred_before is not None:
            self.ops.restore(*self.pred_before)
        if self.label_before is not None and self.action in ("delete", "geometry", "class"):
            self.project.restore_annotation(self.label_before)  # the very bytes it had
        self.project.undo_label_check(self.check.id, by=self.ops.session.reviewer)

    def again(self) -> None:
        assert self.check is not None
        if self.action == "add":
            # the same annotation id as the first time, then the ledger row again
            assert self.pred_after is not None
            self.ops.restore(*self.pred_after)
            self.check = self.project.redo_label_check(self.check.id, by=self.ops.session.reviewer)
            return
        # nothing was created: the same fix on the same state gives the same result
        self.check = self.project.fix_label_issue(
            self.issue, self.action, by=self.ops.session.reviewer, model=self.model
        )
