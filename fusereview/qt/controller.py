"""The review controller: turns keys, clicks and tool gestures into undo commands on one project.

It owns the project's ``QUndoStack`` and the item models, follows the project's events, and tells
the canvas what to show (a render context). It holds no review state the core does not have:
only where the reviewer is (the image shown, the selected item, the queue row) and view options.
Nothing here needs a widget, so a whole review can be driven in tests without a window.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from fusereview.core.events import Event
from fusereview.core.geometry import xyxy_to_xywh
from fusereview.core.project import Project
from fusereview.core.records import Category, ReviewState
from fusereview.core.review import ReviewSession
from fusereview.qt.canvas.render import Key, Layers, RenderContext
from fusereview.qt.canvas.scene import build_context
from fusereview.qt.commands import (
    AddAnnotationCommand,
    DecideCommand,
    DeleteAnnotationCommand,
    EditPredictionCommand,
    ReviewOps,
    SetCategoryCommand,
    UpdateAnnotationCommand,
    push_macro,
)
from fusereview.qt.models.image_list import ImageListModel
from fusereview.qt.models.queue import QueueFilter, QueueModel

Box = tuple[float, float, float, float]


class ReviewController(QObject):
    """Where the reviewer is, and what each review action does.

    Parameters
    ----------
    project:
        The open project (the controller does not close it).
    reviewer:
        Name recorded with each decision.
    thumbnails:
        Make thumbnails for the image list (off in benchmarks and most tests).

    Signals
    -------
    context_changed(object, bool):
        A new render context for the canvas, and whether the image changed.
    selection_changed(object):
        The selected key (``("pred", id)``, ``("gt", id)`` or ``None``).
    message(str):
        A short status message.
    refine_requested(int, object, int):
        Image id, box (xyxy) and category of a SAM3 box prompt to run in the background.
    """

    context_changed = Signal(object, bool)
    selection_changed = Signal(object)
    message = Signal(str)
    refine_requested = Signal(int, object, int)

    def __init__(self, project: Project, reviewer: str = "", *, thumbnails: bool = True) -> None:
        super().__init__()
        self.project = project
        self.session = ReviewSession(project, reviewer)
        self.ops = ReviewOps(self.session)
        self.stack = QUndoStack(self)
        self.categories: list[Category] = project.categories()
        self.image_model = ImageListModel(project, thumbnails=thumbnails)
        names = {img.id: img.file_name for img in self.image_model.images}
        self.queue_model = QueueModel(self.session, names, {c.id: c.name for c in self.categories})
        self.image_id: int | None = None
        self.selected: Key | None = None
        self.queue_row = 0
        self.layers = Layers()
        self.threshold = 0.0
        self.new_category_id = self.categories[0].id if self.categories else 0
        self.ctx = RenderContext(0, 0)
        self._quiet = 0  # > 0 while an action will show the result itself (no double refresh)
        self.session.events.connect(self._on_event)
        self.queue_model.refresh()

    def close(self) -> None:
        """Stop following the project (call before closing it)."""
        try:
            self.session.events.disconnect(self._on_event)
        except ValueError:
            pass
        self.image_model.shutdown()
        # commands hold the project: drop them now, not in a garbage collection after Qt is gone
        self.stack.clear()

    # --- following the core ---------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self.queue_model.on_event(event)
        self.image_model.on_event(event)
        if self.image_id is not None and not self._quiet:
            self.refresh()

    def reload_all(self) -> None:
        """Re-read everything from the database: another process (or connection) changed it.

        Events reach only this process's views; writes by a CLI ``predict`` or a second window
        are found by polling (:meth:`Project.poll_external_changes`) and shown through this.
        """
        self.queue_model.refresh()
        self.image_model.recount()
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the canvas context of the current image from the project."""
        if self.image_id is None:
            return
        self._show(self.image_id, self.selected, image_changed=False)

    def _show(self, image_id: int, selected: Key | None, image_changed: bool) -> None:
        ctx = build_context(
            self.project, image_id, layers=self.layers, threshold=self.threshold, selected=selected
        )
        if selected is not None and not any(o.key == selected for o in ctx.overlays):
            ctx = ctx.with_selected(None)
        self.image_id = image_id
        self.ctx = ctx
        changed_selection = ctx.selected != self.selected
        self.selected = ctx.selected
        self.context_changed.emit(ctx, image_changed)
        if changed_selection or image_changed:
            self.selection_changed.emit(self.selected)

    # --- navigation -----------------------------------------------------------------------------
    def open_image(self, image_id: int, select: Key | None = None) -> None:
        """Show an image (and select one of its items)."""
        self._show(image_id, select, image_changed=image_id != self.image_id)

    def select(self, key: Key | None) -> None:
        """Select an item of the current image (from a click on the canvas or the queue)."""
        if key == self.selected:
            return
        self.selected = key
        self.ctx = self.ctx.with_selected(key)
        self.context_changed.emit(self.ctx, False)
        self.selection_changed.emit(key)
        if key is not None and key[0] == "pred":
            row = self.queue_model.row_of(key[1])
            if row is not None:
                self.queue_row = row

    def go_to_row(self, row: int) -> bool:
        """Show the queue item of a row (clamped); returns False when the queue is empty."""
        n = self.queue_model.rowCount()
        if n == 0:
            self.message.emit("queue empty: every prediction in this view is decided")
            if self.image_id is not None:
                self.select(None)
            return False
        row = min(max(row, 0), n - 1)
        item = self.queue_model.item(row)
        assert item is not None
        self.queue_row = row
        self.open_image(item.image_id, ("pred", item.prediction_id))
        return True

    def _at_queue_row(self) -> bool:
        item = self.queue_model.item(self.queue_row)
        return item is not None and self.selected == ("pred", item.prediction_id)

    def next_pending(self) -> bool:
        """Go to the next pending prediction in queue order (Space / N)."""
        return self.go_to_row(self.queue_row + 1 if self._at_queue_row() else self.queue_row)

    def previous_pending(self) -> bool:
        """Go to the previous pending prediction in queue order (P)."""
        return self.go_to_row(self.queue_row - 1)

    def next_on_image(self) -> None:
        """Select the next visible item of the same image (Tab)."""
        from fusereview.qt.canvas.render import visible_overlays

        keys = [o.key for o in visible_overlays(self.ctx)]
        if not keys:
            return
        i = keys.index(self.selected) + 1 if self.selected in keys else 0
        self.select(keys[i % len(keys)])

    def step_image(self, delta: int) -> None:
        """Show the next (+1) or previous (-1) image of the image list (PageDown / PageUp)."""
        rows = self.image_model.rows
        if self.image_id is None or self.image_id not in rows:
            return
        row = rows[self.image_id] + delta
        if 0 <= row < len(self.image_model.images):
            self.open_image(self.image_model.images[row].id)

    def upcoming_images(self, n: int = 2) -> list[int]:
        """Images the reviewer will probably open next (to prefetch): next in list and in queue."""
        out: list[int] = []
        row = self.image_model.rows.get(self.image_id) if self.image_id is not None else None
        if row is not None and row + 1 < len(self.image_model.images):
            out.append(self.image_model.images[row + 1].id)
        for row in range(self.queue_row, min(self.queue_row + 50, self.queue_model.rowCount())):
            item = self.queue_model.item(row)
            if item is not None and item.image_id != self.image_id and item.image_id not in out:
                out.append(item.image_id)
                if len(out) >= n:
                    break
        return out

    # --- decisions ---------------------------------------------------------------------------
    def _target_pid(self) -> int | None:
        if self.selected is not None and self.selected[0] == "pred":
            return self.selected[1]
        item = self.queue_model.item(self.queue_row)
        return None if item is None else item.prediction_id

    def _decide(self, state: ReviewState) -> None:
        pid = self._target_pid()
        if pid is None:
            self.message.emit("nothing to decide: select a prediction")
            return
        row = self.queue_model.row_of(pid)
        self._quiet += 1
        try:
            self.stack.push(DecideCommand(self.ops, pid, state))
        finally:
            self._quiet -= 1
        if row is None or not self.go_to_row(row):  # the next pending prediction took its place
            self.refresh()
        self.message.emit(f"prediction {pid} {state.value}")

    def accept(self) -> None:
        """Accept the selected prediction (A)."""
        self._decide(ReviewState.ACCEPTED)

    def reject(self) -> None:
        """Reject the selected prediction (R)."""
        self._decide(ReviewState.REJECTED)

    def delete(self) -> None:
        """Delete: reject a prediction, delete a drawn or ground-truth annotation."""
        if self.selected is not None and self.selected[0] == "gt":
            self.stack.push(DeleteAnnotationCommand(self.ops, self.selected[1]))
            return
        self.reject()

    def set_category_number(self, n: int) -> None:
        """Keys 1-9: category ``n`` for the selected item, and for objects drawn next."""
        if not 1 <= n <= len(self.categories):
            self.message.emit(f"no category {n} (this project has {len(self.categories)})")
            return
        cat = self.categories[n - 1]
        self.new_category_id = cat.id
        if self.selected is None:
            self.message.emit(f"new objects: {cat.name}")
            return
        kind, ident = self.selected
        if kind == "pred":
            self.stack.push(SetCategoryCommand(self.ops, ident, cat.id))
        else:
            ann = self.project.annotation(ident)
            if ann.category_id != cat.id:
                self.stack.push(UpdateAnnotationCommand(self.ops, ann, category_id=cat.id))
        self.message.emit(f"category: {cat.name}")

    def _pending_on_image(self) -> list[tuple[int, float]]:
        if self.image_id is None:
            return []
        preds = self.project.predictions(image_id=self.image_id, states=(ReviewState.PENDING,))
        return [(p.id, p.score) for p in preds]

    def accept_above(self, threshold: float | None = None) -> int:
        """Accept every pending prediction of this image scoring at least the threshold (one undo)."""
        t = self.threshold if threshold is None else threshold
        ids = [pid for pid, s in self._pending_on_image() if s >= t]
        cmds: list[QUndoCommand] = [DecideCommand(self.ops, pid, ReviewState.ACCEPTED) for pid in ids]
        push_macro(self.stack, f"accept {len(ids)} above {t:.2f}", cmds)
        self.message.emit(f"accepted {len(ids)} predictions scoring {t:.2f} or more")
        return len(ids)

    def reject_below(self, threshold: float | None = None) -> int:
        """Reject every pending prediction of this image scoring below the threshold (one undo)."""
        t = self.threshold if threshold is None else threshold
        ids = [pid for pid, s in self._pending_on_image() if s < t]
        cmds: list[QUndoCommand] = [DecideCommand(self.ops, pid, ReviewState.REJECTED) for pid in ids]
        push_macro(self.stack, f"reject {len(ids)} below {t:.2f}", cmds)
        self.message.emit(f"rejected {len(ids)} predictions scoring below {t:.2f}")
        return len(ids)

    def undo(self) -> None:
        """Undo the last action and show what it touched."""
        if not self.stack.canUndo():
            self.message.emit("nothing to undo")
            return
        cmd = self.stack.command(self.stack.index() - 1)
        self.stack.undo()
        self._show_command(cmd)

    def redo(self) -> None:
        """Redo the last undone action."""
        if not self.stack.canRedo():
            self.message.emit("nothing to redo")
            return
        cmd = self.stack.command(self.stack.index())
        self.stack.redo()
        self._show_command(cmd)

    def _show_command(self, cmd: QUndoCommand | None) -> None:
        pid = getattr(cmd, "pid", None)
        if pid is None and cmd is not None and cmd.childCount():
            pid = getattr(cmd.child(0), "pid", None)
        if pid is not None:
            pred = self.project.prediction(pid)
            self.open_image(pred.image_id, ("pred", pid))
            row = self.queue_model.row_of(pid)
            if row is not None:
                self.queue_row = row
        self.message.emit(cmd.text() if cmd is not None else "")

    # --- view options ---------------------------------------------------------------------------
    def set_layers(self, **changes: bool) -> None:
        """Toggle layers (gt, predictions, masks, labels)."""
        self.layers = replace(self.layers, **changes)
        self.refresh()

    def set_threshold(self, threshold: float) -> None:
        """Hide predictions scoring below ``threshold`` (also the macros' threshold)."""
        self.threshold = float(threshold)
        self.refresh()

    def set_queue_filter(self, **changes: Any) -> None:
        """Change the queue's order or filters and go to its first item."""
        self.queue_model.set_filter(QueueFilter(**{**self.queue_model.filter.__dict__, **changes}))
        self.queue_row = 0

    # --- tool host: correction gestures become commands -----------------------------------------
    def edit_box(self, key: Key, box: Box) -> None:
        """A box was moved or resized (one command per drag)."""
        if key[0] == "pred":
            self.stack.push(EditPredictionCommand(self.ops, key[1], box=box))
        else:
            ann = self.project.annotation(key[1])
            self.stack.push(UpdateAnnotationCommand(self.ops, ann, bbox=xyxy_to_xywh(box)))

    def edit_mask(self, key: Key, mask: dict) -> None:
        """A brush or eraser stroke changed a mask (one command per stroke)."""
        from fusereview.core.geometry import rle_area

        if rle_area(mask) == 0:
            self.message.emit("the mask would be empty: use R or Delete to remove the object")
            return
        if key[0] == "pred":
            self.stack.push(EditPredictionCommand(self.ops, key[1], mask=mask))
        else:
            ann = self.project.annotation(key[1])
            self.stack.push(UpdateAnnotationCommand(self.ops, ann, segmentation=mask))

    def edit_polygons(self, key: Key, polygons: list[list[float]]) -> None:
        """Polygon vertices were dragged, inserted or deleted."""
        if key[0] != "gt":
            self.message.emit("predictions are masks: edit them with the brush")
            return
        ann = self.project.annotation(key[1])
        self.stack.push(UpdateAnnotationCommand(self.ops, ann, segmentation=[list(p) for p in polygons]))

    def add_box(self, box: Box) -> None:
        """A new box was drawn for a missed object."""
        self._add_annotation(bbox=xyxy_to_xywh(box), segmentation=None, text="draw box")

    def add_polygon(self, polygon: list[float]) -> None:
        """A new polygon was drawn for a missed object."""
        self._add_annotation(bbox=None, segmentation=[list(polygon)], text="draw polygon")

    def _add_annotation(self, *, bbox: Any, segmentation: Any, text: str) -> None:
        """Push one undoable "add" of the current category on the current image, then select it."""
        if self.image_id is None:
            return
        cmd = AddAnnotationCommand(
            self.ops, self.image_id, self.new_category_id, bbox=bbox, segmentation=segmentation, text=text
        )
        self.stack.push(cmd)
        if cmd.created is not None:
            self.select(("gt", cmd.created.id))

    def refine(self, box: Box) -> None:
        """A SAM3 box prompt was drawn: ask for a background segmentation."""
        if self.image_id is None:
            return
        cat = self.new_category_id
        if self.selected is not None and self.selected[0] == "pred":
            cat = self.project.prediction(self.selected[1]).category_id
        self.refine_requested.emit(self.image_id, box, cat)

    def apply_refine(self, image_id: int, detections: list[Any], target: Key | None) -> None:
        """Use the best detection of a refine: the selected prediction's new mask, or a new object."""
        found = [d for d in detections if d.mask is not None]
        if not found:
            self.message.emit("SAM3 found nothing in that box")
            return
        best = max(found, key=lambda d: d.score)
        if target is not None and target[0] == "pred":
            self.stack.push(EditPredictionCommand(self.ops, target[1], mask=best.mask))
            return
        cmd = AddAnnotationCommand(
            self.ops,
            image_id,
            best.category_id,
            bbox=xyxy_to_xywh(best.box),
            segmentation=best.mask,
            text="SAM3 refine",
        )
        self.stack.push(cmd)

    # --- export --------------------------------------------------------------------------------------
    def export(self, out: Path | None = None) -> list[Path]:
        """Export COCO (default ``<project>/exports/coco/``); what was exported is 'clean'."""
        out = out or self.project.root / "exports" / "coco"
        written = self.project.export_coco(out)
        self.stack.setClean()
        self.message.emit(f"exported {len(written)} file(s) to {out}")
        return written
