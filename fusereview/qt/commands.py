"""Undo commands: every review action the GUI offers, as a ``QUndoCommand`` that calls core methods.

Each command snapshots what it changes before the first ``redo`` and restores it in ``undo``, by
calling the review session or the project only, so that commands are testable without widgets.
Every call commits to the project database before it returns, so pushing a command *is* the
autosave: a crash right after loses nothing. Multi-item actions (accept all above a threshold)
are macros on the stack, one undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand, QUndoStack

from fusereview.core.records import Annotation, Prediction, ReviewState

if TYPE_CHECKING:
    from fusereview.core.project import Project
    from fusereview.core.records import RLE
    from fusereview.core.review import ReviewSession

Box = tuple[float, float, float, float]


class ReviewOps:
    """The core calls the commands make.

    The project announces every committed change on its event hub itself, so nothing here emits
    events: views follow the database, whoever changed it.
    """

    def __init__(self, session: ReviewSession) -> None:
        self.session = session
        self.project: Project = session.project

    # predictions -------------------------------------------------------------------------
    def snapshot(self, pid: int) -> tuple[Prediction, Annotation | None]:
        """A prediction and its linked annotation, as they are now."""
        pred = self.project.prediction(pid)
        ann = self.project.annotation(pred.annotation_id) if pred.annotation_id is not None else None
        return pred, ann

    def restore(self, pred: Prediction, ann: Annotation | None) -> None:
        """Bring a prediction back to a snapshot: state, category and geometry, same annotation id.

        Resetting deletes (soft) the current annotation; restoring the snapshot's annotation
        brings back its id and fields exactly, and an edited one is marked edited again.
        """
        state = ReviewState(pred.state)
        now = self.project.prediction(pred.id)
        if (
            state in (ReviewState.PENDING, ReviewState.REJECTED)
            and ReviewState(now.state) is state
            and now.annotation_id is None
        ):
            return
        if ReviewState(now.state) is not ReviewState.PENDING:
            self.session.reset(pred.id)
        if state is ReviewState.REJECTED:
            self.session.reject(pred.id)
        elif state in (ReviewState.ACCEPTED, ReviewState.EDITED):
            if ann is None:
                self.session.accept(pred.id)
                return
            # the snapshot says which state to return to (the history's latest would be the edit
            # being undone)
            self.project.restore_annotation(ann, state=state.value)

    # annotations -------------------------------------------------------------------------
    def add_annotation(self, image_id: int, category_id: int, *, bbox: Box, segmentation: Any) -> Annotation:
        """Create a reviewer-drawn annotation (bbox in COCO xywh)."""
        return self.project.add_annotation(
            image_id, category_id, bbox=bbox, segmentation=segmentation, source="review"
        )

    def update_annotation(self, ann_id: int, **fields: Any) -> Annotation:
        """Change an annotation's bbox, segmentation or category."""
        return self.project.update_annotation(ann_id, **fields)

    def delete_annotation(self, ann_id: int) -> Annotation:
        """Delete an annotation; returns it for undo."""
        return self.project.delete_annotation(ann_id)

    def restore_annotation(self, ann: Annotation) -> None:
        """Undo a delete (same id)."""
        self.project.restore_annotation(ann)


class _PredictionCommand(QUndoCommand):
    """Base: snapshot one prediction on the first redo, restore it on undo."""

    def __init__(self, ops: ReviewOps, pid: int, text: str) -> None:
        super().__init__(text)
        self.ops = ops
        self.pid = pid
        self.before: tuple[Prediction, Annotation | None] | None = None
        self.after_snapshot: tuple[Prediction, Annotation | None] | None = None

    def redo(self) -> None:
        if self.before is None:
            self.before = self.ops.snapshot(self.pid)
            self.apply()
            self.after_snapshot = self.ops.snapshot(self.pid)
        else:
            # redo brings back exactly what the first run made (same annotation id)
            assert self.after_snapshot is not None
            self.ops.restore(*self.after_snapshot)

    def undo(self) -> None:
        assert self.before is not None
        self.ops.restore(*self.before)

    def apply(self) -> Prediction:
        """The change itself (a core call)."""
        raise NotImplementedError


class DecideCommand(_PredictionCommand):
    """Accept, reject or reset one prediction."""

    def __init__(self, ops: ReviewOps, pid: int, state: ReviewState) -> None:
        super().__init__(ops, pid, f"{state.value} prediction {pid}")
        self.state = ReviewState(state)

    def apply(self) -> Prediction:
        s = self.ops.session
        if self.state is ReviewState.ACCEPTED:
            return s.accept(self.pid)
        if self.state is ReviewState.REJECTED:
            return s.reject(self.pid)
        if self.state is ReviewState.PENDING:
            return s.reset(self.pid)
        raise ValueError("use EditPredictionCommand for edits")


class SetCategoryCommand(_PredictionCommand):
    """Give a prediction another category."""

    def __init__(self, ops: ReviewOps, pid: int, category_id: int) -> None:
        super().__init__(ops, pid, f"set category of prediction {pid}")
        self.category_id = category_id

    def apply(self) -> Prediction:
        return self.ops.session.set_category(self.pid, self.category_id)


class EditPredictionCommand(_PredictionCommand):
    """Change a prediction's box and/or mask (it becomes an edited, accepted annotation)."""

    def __init__(self, ops: ReviewOps, pid: int, *, box: Box | None = None, mask: RLE | None = None) -> None:
        super().__init__(ops, pid, f"edit prediction {pid}")
        self.box = box
        self.mask = mask

    def apply(self) -> Prediction:
        return self.ops.session.edit(self.pid, box=self.box, mask=self.mask)


class AddAnnotationCommand(QUndoCommand):
    """Add an annotation the model missed; redo after undo restores the same id."""

    def __init__(
        self, ops: ReviewOps, image_id: int, category_id: int, *, bbox: Box, segmentation: Any, text: str = ""
    ) -> None:
        super().__init__(text or "add annotation")
        self.ops = ops
        self.args = (image_id, category_id)
        self.bbox = bbox
        self.segmentation = segmentation
        self.created: Annotation | None = None

    def redo(self) -> None:
        if self.created is None:
            self.created = self.ops.add_annotation(*self.args, bbox=self.bbox, segmentation=self.segmentation)
        else:
            self.ops.restore_annotation(self.created)

    def undo(self) -> None:
        assert self.created is not None
        self.created = self.ops.delete_annotation(self.created.id)


class UpdateAnnotationCommand(QUndoCommand):
    """Change an annotation's bbox (xywh), segmentation or category."""

    def __init__(self, ops: ReviewOps, ann: Annotation, **fields: Any) -> None:
        super().__init__(f"edit annotation {ann.id}")
        self.ops = ops
        self.before = ann
        self.fields = fields

    def redo(self) -> None:
        self.ops.update_annotation(self.before.id, **self.fields)

    def undo(self) -> None:
        b = self.before
        self.ops.update_annotation(b.id, bbox=b.bbox, segmentation=b.segmentation, category_id=b.category_id)


class DeleteAnnotationCommand(QUndoCommand):
    """Delete an annotation (undo restores it with the same id)."""

    def __init__(self, ops: ReviewOps, ann_id: int) -> None:
        super().__init__(f"delete annotation {ann_id}")
        self.ops = ops
        self.ann_id = ann_id
        self.deleted: Annotation | None = None

    def redo(self) -> None:
        self.deleted = self.ops.delete_annotation(self.ann_id)

    def undo(self) -> None:
        assert self.deleted is not None
        self.ops.restore_annotation(self.deleted)


def push_macro(stack: QUndoStack, text: str, commands: list[QUndoCommand]) -> None:
    """Push several commands as one undo step (nothing is pushed for an empty list)."""
    if not commands:
        return
    stack.beginMacro(text)
    try:
        for cmd in commands:
            stack.push(cmd)
    finally:
        stack.endMacro()
