"""The "Label issues" queue as a table model: the project's label issues, most likely first.

The issues come from :func:`fusereview.core.label_issues.find_label_issues` (one model's
predictions against the labels). The whole project is scored once; after that, a change the
project announces (a fix, a decision, an edit, an undo) rescores only the images it touched, with
the model's recall of the first scoring, and the list is sorted again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from fusereview.core.label_issues import (
    ISSUE_MIN,
    KIND_NAMES,
    KINDS,
    LabelIssue,
    LabelIssuesError,
    find_label_issues,
)
from fusereview.qt.models.queue import RowsTableModel

if TYPE_CHECKING:
    from fusereview.core.events import Event
    from fusereview.core.project import Project

_Index = QModelIndex | QPersistentModelIndex
#: Event kinds after which the touched images are rescored (the others need a full rescoring).
_LOCAL = ("decided", "annotation_changed", "matches_changed", "label_checked")
SHORT_KIND = {k: k.replace("_", " ") for k in KINDS}  # the table's kind column


class IssueQueueModel(RowsTableModel):
    """Label issues of one model: columns score, kind, image, what disagrees.

    Parameters
    ----------
    project:
        The open project.
    image_names, category_names:
        Display names by id.
    """

    HEADERS = ("score", "kind", "disagreement", "image")

    def __init__(self, project: Project, image_names: dict[int, str], category_names: dict[int, str]) -> None:
        super().__init__()
        self.project = project
        self.image_names = image_names
        self.category_names = category_names
        self.model: str | None = None
        self.min_score = ISSUE_MIN
        self.kind: str | None = None  # one kind's queue (each label scored for it), None: every kind
        #: annotation id -> the interactive head's support for an object in the label's box
        #: (``fusereview.models.box_check``), for the labels it was asked about
        self.box_support: dict[int, float] = {}
        self.issues: list[LabelIssue] = []
        self.recall: dict[int, float] = {}
        self.hidden = 0
        self.scored = False  # the whole project has been scored (it is done when the mode is first shown)
        self.problem = ""  # why there are no issues to show (the model's predictions are gone)
        self.models_changed = False  # a model run added predictions (of a new model, maybe)

    # --- reading the core -----------------------------------------------------------------
    def refresh(self) -> None:
        """Score the whole project again with the current model and minimum score."""
        self.beginResetModel()
        try:
            self.issues, self.hidden, self.problem = [], 0, ""
            if self.model is not None:
                try:
                    report = find_label_issues(
                        self.project,
                        self.model,
                        min_score=self.min_score,
                        kind=self.kind,
                        box_support=self.box_support,
                    )
                except LabelIssuesError as exc:  # its predictions were replaced meanwhile
                    self.problem = str(exc)
                else:
                    self.issues, self.recall, self.hidden = report.issues, report.recall, report.hidden
            self.scored = True
        finally:
            self.endResetModel()

    def set_model(self, model: str | None, min_score: float | None = None) -> None:
        """Show another model's issues (and/or another minimum score)."""
        self.model = model
        if min_score is not None:
            self.min_score = float(min_score)
        self.refresh()

    def set_box_support(self, support: dict[int, float]) -> None:
        """Take the interactive head's answers about label boxes into the scores (adds to earlier ones)."""
        self.box_support.update(support)
        if self.scored:
            self.refresh()

    def set_kind(self, kind: str | None) -> None:
        """Show one kind's issues, each label scored for that kind (``None``: every kind)."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind = kind
        if self.scored:
            self.refresh()

    def rescore(self, image_ids: set[int]) -> None:
        """Score some images again (after a change on them) and keep the list in order."""
        if not image_ids or self.model is None or not self.scored:
            return
        try:
            report = find_label_issues(
                self.project,
                self.model,
                image_ids=image_ids,
                min_score=self.min_score,
                recall=self.recall,
                kind=self.kind,
                box_support=self.box_support,
            )
        except LabelIssuesError:  # the model's predictions are gone: say so
            self.refresh()
            return
        self.beginResetModel()
        kept = [i for i in self.issues if i.image_id not in image_ids]
        self.issues = sorted(
            kept + report.issues,
            key=lambda i: (-i.score, i.image_id, i.annotation_id or 0, i.prediction_id or 0),
        )
        self.endResetModel()

    def on_event(self, event: Event) -> None:
        """Follow a committed change: rescore the images it touched.

        A model run stores its predictions in chunks: each chunk rescores its own images (with
        the recall of the first scoring), never the whole project.
        """
        if event.kind == "predictions_added":
            self.models_changed = True  # the panel lists the models again
        if not self.scored:
            return
        if event.kind in _LOCAL or event.kind == "predictions_added":
            self.rescore(self._images_of(event))
        elif event.kind == "predictions_removed":
            # the rows are gone: rescore the images whose issues named them
            gone = set(event.ids)
            self.rescore({i.image_id for i in self.issues if i.prediction_id in gone})

    def _images_of(self, event: Event) -> set[int]:
        ids = list(event.ids)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        table = {
            "decided": "predictions",
            "matches_changed": "predictions",
            "predictions_added": "predictions",
            "annotation_changed": "annotations",  # deleted rows keep their image
            "label_checked": "label_checks",
        }[event.kind]
        return {
            int(r[0])
            for r in self.project.db.read(f"SELECT image_id FROM {table} WHERE id IN ({marks})", ids)
        }

    # --- rows -------------------------------------------------------------------------------
    def item(self, row: int) -> LabelIssue | None:
        """The issue of a row (``None`` outside)."""
        return self.issues[row] if 0 <= row < len(self.issues) else None

    def row_of(self, key: tuple[str, int]) -> int | None:
        """Row of the issue about an item (``("gt", ann id)`` or ``("pred", prediction id)``)."""
        return next((r for r, i in enumerate(self.issues) if i.key == key), None)

    def describe(self, issue: LabelIssue) -> str:
        """What disagrees, in words (the last column, and the status bar)."""
        cat = self.category_names.get(issue.category_id, str(issue.category_id))
        if issue.kind == "missing":
            return f"prediction {issue.prediction_id} ({cat} {issue.prediction_score or 0:.2f}): no label"
        pred = ""
        if issue.prediction_id is not None:
            pcat = self.category_names.get(issue.prediction_category_id or 0, "?")
            pred = f" vs prediction {issue.prediction_id} ({pcat} {issue.prediction_score or 0:.2f}"
            pred += f", IoU {issue.iou:.2f})" if issue.iou is not None else ")"
        return f"ann {issue.annotation_id} ({cat}){pred or ': nothing the model sees'}"

    def brief(self, issue: LabelIssue) -> str:
        """What disagrees, short (the table's column; :meth:`describe` is the tooltip)."""
        label = f"ann {issue.annotation_id}" if issue.annotation_id is not None else "no label"
        if issue.prediction_id is None:
            return f"{label} ↔ nothing"
        iou = f" · IoU {issue.iou:.2f}" if issue.iou is not None and issue.annotation_id is not None else ""
        return f"{label} ↔ pred {issue.prediction_score or 0:.2f}{iou}"

    # --- Qt model API -------------------------------------------------------------------------
    def rows(self) -> list[LabelIssue]:
        return self.issues

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        issue = self.item(index.row()) if index.isValid() else None
        if issue is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return f"{issue.score:.2f}"
            if col == 1:
                return SHORT_KIND[issue.kind]
            if col == 2:
                return self.brief(issue)
            if col == 3:
                return self.image_names.get(issue.image_id, str(issue.image_id))
            return self.describe(issue)
        if role == Qt.ItemDataRole.ToolTipRole:
            others = ", ".join(f"{KIND_NAMES[k]} {s:.2f}" for k, s in issue.scores[1:] if s > 0)
            return self.describe(issue) + (f"\nalso scored: {others}" if others else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
