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


class ReviewCommand(QUndoCommand):
    """Base of every review command: its first run can happen *before* it is pushed.

    ``QUndoStack.push`` calls ``redo`` from C++, where a Python exception is printed and the
    command stays on the stack as if it had worked. The controller therefore calls
    :meth:`prepare` first (errors reach it as exceptions, and nothing is pushed); the push's own
    ``redo`` is then skipped. Later redos (after an undo) bring back exactly what the first run
    made (:meth:`again`).
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._ran = False
        self._skip_redo = False

    def prepare(self) -> None:
        """Run the change now (raises on failure, then the command must not be pushed)."""
        self.first()
        self._ran = True
        self._skip_redo = True

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        if not self._ran:
            self.first()
            self._ran = True
        else:
            self.again()

    def first(self) -> None:
        """The change, the first time."""
        raise NotImplementedError

    def again(self) -> None:
        """The change again after an undo (the same ids and fields as the first time)."""
        raise NotImplementedError


class _PredictionCommand(ReviewCommand):
    """Base: snapshot one prediction before the change, restore it on undo."""

    def __init__(self, ops: ReviewOps, pid: int, text: str) -> None:
        super().__init__(text)
        self.ops = ops
        self.pid = pid
        self.before: tuple[Prediction, Annotation | None] | None = None
        self.after_snapshot: tuple[Prediction, Annotation | None] | None = None
        self.result: Prediction | None = None

    def first(self) -> None:
        self.before = self.ops.snapshot(self.pid)
        self.result = self.apply()
        self.after_snapshot = self.ops.snapshot(self.pid)

    def again(self) -> None:
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
    """Accept, reject or reset one prediction (accepting a matched one records agreement)."""

    def __init__(self, ops: ReviewOps, pid: int, state: ReviewState) -> None:
        super().__init__(ops, pid, f"{_VERBS.get(ReviewState(state), state.value)} prediction {pid}")
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


_VERBS = {ReviewState.ACCEPTED: "accept", ReviewState.REJECTED: "reject", ReviewState.PENDING: "reset"}


class SetCategoryCommand(_PredictionCommand):
    """Give a prediction another category."""

    def __init__(self, ops: ReviewOps, pid: int, category_id: int) -> None:
        super().__init__(ops, pid, f"set category of prediction {pid}")
        self.category_id = category_id

    def apply(self) -> Prediction:
        return self.ops.session.set_category(self.pid, self.category_id)


class EditPredictionCommand(_PredictionCommand):
    """Change a prediction's box and/or mask, or make it box only (an edited, accepted annotation)."""

    def __init__(
        self,
        ops: ReviewOps,
        pid: int,
        *,
        box: Box | None = None,
        mask: RLE | None = None,
        box_only: bool = False,
        text: str = "",
    ) -> None:
        super().__init__(ops, pid, text or f"edit prediction {pid}")
        self.box = box
        self.mask = mask
        self.box_only = box_only

    def apply(self) -> Prediction:
        return self.ops.session.edit(self.pid, box=self.box, mask=self.mask, box_only=self.box_only)


class TakeGeometryCommand(_PredictionCommand):
    """Replace the geometry of the annotation a prediction matches with the prediction's (T)."""

    def __init__(self, ops: ReviewOps, pid: int, annotation_id: int) -> None:
        super().__init__(ops, pid, f"replace annotation {annotation_id}'s geometry with prediction {pid}'s")
        self.annotation_id = annotation_id
        self.label_before: Annotation | None = None
        self.label_after: Annotation | None = None

    def first(self) -> None:
        self.label_before = self.ops.project.annotation(self.annotation_id)
        super().first()
        self.label_after = self.ops.project.annotation(self.annotation_id)

    def apply(self) -> Prediction:
        return self.ops.session.take_geometry(self.pid)

    def again(self) -> None:
        super().again()
        assert self.label_after is not None
        self.ops.project.restore_annotation(self.label_after)

    def undo(self) -> None:
        super().undo()
        assert self.label_before is not None
        self.ops.project.restore_annotation(self.label_before)  # exactly as it was: same bytes on export


class AddAnnotationCommand(ReviewCommand):
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

    def first(self) -> None:
        self.created = self.ops.add_annotation(*self.args, bbox=self.bbox, segmentation=self.segmentation)
        self.setText(f"{self.text()}: annotation {self.created.id}")

    def again(self) -> None:
        assert self.created is not None
        self.ops.restore_annotation(self.created)

    def undo(self) -> None:
        assert self.created is not None
        self.created = self.ops.delete_annotation(self.created.id)


class UpdateAnnotationCommand(ReviewCommand):
    """Change an annotation's bbox (xywh), segmentation, category, or make it box only.

    Undo and redo write the snapshots back field by field (``Project.restore_annotation``), so an
    undone edit gives back the very bytes the export had (an imported area stays as imported).
    """

    def __init__(self, ops: ReviewOps, ann: Annotation, **fields: Any) -> None:
        super().__init__(f"edit annotation {ann.id}")
        self.ops = ops
        self.before = ann
        self.fields = fields
        self.after: Annotation | None = None

    def first(self) -> None:
        self.after = self.ops.update_annotation(self.before.id, **self.fields)

    def again(self) -> None:
        assert self.after is not None
        self.ops.project.restore_annotation(self.after)

    def undo(self) -> None:
        self.ops.project.restore_annotation(self.before)


class DeleteAnnotationCommand(ReviewCommand):
    """Delete an annotation (undo restores it with the same id)."""

    def __init__(self, ops: ReviewOps, ann_id: int) -> None:
        super().__init__(f"delete annotation {ann_id}")
        self.ops = ops
        self.ann_id = ann_id
        self.deleted: Annotation | None = None

    def first(self) -> None:
        self.deleted = self.ops.delete_annotation(self.ann_id)

    def again(self) -> None:
        self.deleted = self.ops.delete_annotation(self.ann_id)

    def undo(self) -> None:
        assert self.deleted is not None
        self.ops.restore_annotation(self.deleted)


def push_macro(stack: QUndoStack, text: str, commands: list[ReviewCommand]) -> None:
    """Run several commands and push them as one undo step (nothing for an empty list).

    Each command is prepared (run) before it is pushed; when one fails, the ones already run
    are undone, nothing is pushed, and the error is raised.
    """
    if not commands:
        return
    done: list[ReviewCommand] = []
    try:
        for cmd in commands:
            cmd.prepare()
            done.append(cmd)
    except BaseException:
        for cmd in reversed(done):
            cmd.undo()
        raise
    stack.beginMacro(text)
    try:
        for cmd in done:
            stack.push(cmd)
    finally:
        stack.endMacro()
