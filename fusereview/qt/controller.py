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

from fusereview.core.errors import FusereviewError
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
    ReviewCommand,
    ReviewOps,
    SetCategoryCommand,
    TakeGeometryCommand,
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
    refine_requested(int, object, int, object):
        Image id, box (xyxy), category and target (the key whose mask the result replaces, or
        ``None`` for a new object) of a SAM3 box prompt to run in the background.
    resegment_offered(object, object):
        A box was edited: the key and the drawn box, for an offer to re-segment inside it.
    """

    context_changed = Signal(object, bool)
    selection_changed = Signal(object)
    message = Signal(str)
    refine_requested = Signal(int, object, int, object)
    resegment_offered = Signal(object, object)

    # --- label issues mode (issue 14) -----------------------------------------------------------
    #: The "Label issues" queue (``fusereview.qt.label_issues.LabelIssuesController``) attaches
    #: itself here and is closed with this controller; while it is the review queue's mode
    #: (``queue_mode``), N, P and Space walk its issues instead of the pending predictions.
    label_issues: Any = None
    queue_mode: Any = None
    # --- end of label issues mode ---------------------------------------------------------------

    def __init__(self, project: Project, reviewer: str = "", *, thumbnails: bool = True) -> None:
        super().__init__()
        self.project = project
        self.session = ReviewSession(project, reviewer)
        self.ops = ReviewOps(self.session)
        self.stack = QUndoStack(self)
        self.categories: list[Category] = project.categories()
        self.image_model = ImageListModel(project, thumbnails=thumbnails)
        shown = self.image_model.names
        names = {img.id: shown.get(img.file_name, img.file_name) for img in self.image_model.images}
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
        if self.label_issues is not None:  # label issues mode (issue 14)
            self.label_issues.close()
        self.image_model.shutdown()
        # commands hold the project: drop them now, not in a garbage collection after Qt is gone
        self.stack.clear()

    # --- following the core ---------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self.queue_model.on_event(event)
        self.image_model.on_event(event)
        if self.image_id is None or self._quiet:
            return
        if event.kind == "predictions_added" and self.image_id not in self.image_model.images_of(event.ids):
            return  # another image's predictions: the canvas shows nothing new
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
        if self.queue_mode is not None:  # label issues mode (issue 14): the next issue
            return bool(self.queue_mode.next())
        return self.go_to_row(self.queue_row + 1 if self._at_queue_row() else self.queue_row)

    def previous_pending(self) -> bool:
        """Go to the previous pending prediction in queue order (P)."""
        if self.queue_mode is not None:  # label issues mode (issue 14): the previous issue
            return bool(self.queue_mode.previous())
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
    def push(self, cmd: ReviewCommand, done: str | None = None) -> bool:
        """Run a command, push it on the undo stack and say what it did; False when it was refused.

        The command runs before it is pushed (:meth:`ReviewCommand.prepare`), so a refusal by
        the core (an empty mask, an edit of a matched prediction, ...) is a status message and
        leaves neither the database nor the undo stack changed.
        """
        self._quiet += 1
        try:
            cmd.prepare()
        except (FusereviewError, ValueError) as exc:
            self.message.emit(f"{exc} (nothing changed)" if "nothing" not in str(exc) else str(exc))
            return False
        finally:
            self._quiet -= 1
        self._quiet += 1
        try:
            self.stack.push(cmd)
        finally:
            self._quiet -= 1
        self.refresh()  # the canvas shows what is now stored, at once
        self.message.emit(done if done is not None else cmd.text())
        return True

    def _selected_prediction(self, verb: str) -> int | None:
        """The selected prediction's id; otherwise say why the key does nothing."""
        if self.selected is not None and self.selected[0] == "pred":
            return self.selected[1]
        if self.selected is not None:
            self.message.emit(
                f"{verb} acts on a prediction; annotation {self.selected[1]} is a label "
                "(Delete deletes it, 1-9 change its category): nothing changed"
            )
        else:
            self.message.emit(f"nothing selected for {verb}: Space or N goes to the next pending prediction")
        return None

    def _decide(self, state: ReviewState, verb: str) -> None:
        pid = self._selected_prediction(verb)
        if pid is None:
            return
        row = self.queue_model.row_of(pid)
        cmd = DecideCommand(self.ops, pid, state)
        if not self.push(cmd, done=""):
            return
        # the next pending prediction took its place (in label issues mode the canvas stays: issue 14)
        if self.queue_mode is not None or row is None or not self.go_to_row(row):
            self.refresh()
        self.message.emit(self._decision_text(cmd))

    def _decision_text(self, cmd: DecideCommand) -> str:
        pred = cmd.result
        if pred is None:
            return cmd.text()
        if pred.agrees_with is not None:
            return (
                f"prediction {pred.id} matches annotation {pred.agrees_with}: recorded agreement, "
                "no second label (Ctrl+Z to undo)"
            )
        if pred.state is ReviewState.ACCEPTED:
            return f"accepted prediction {pred.id} as annotation {pred.annotation_id} (Ctrl+Z to undo)"
        return f"{pred.state.value} prediction {pred.id} (Ctrl+Z to undo)"

    def accept(self) -> None:
        """Accept the selected prediction (A); a matched one records agreement with its annotation."""
        self._decide(ReviewState.ACCEPTED, "A (accept)")

    def reject(self) -> None:
        """Reject the selected prediction (R); never deletes an annotation."""
        self._decide(ReviewState.REJECTED, "R (reject)")

    def delete(self) -> None:
        """Delete: an annotation is deleted (undoable), a prediction is rejected."""
        if self.selected is not None and self.selected[0] == "gt":
            ann_id = self.selected[1]
            self.push(
                DeleteAnnotationCommand(self.ops, ann_id), f"deleted annotation {ann_id} — Ctrl+Z to undo"
            )
            return
        self.reject()

    def take_geometry(self) -> None:
        """T: replace the matched annotation's geometry with the selected prediction's."""
        pid = self._selected_prediction("T (take the prediction's geometry)")
        if pid is None:
            return
        pred = self.project.prediction(pid)
        if pred.match_annotation_id is None or pred.state is not ReviewState.PENDING:
            self.message.emit(
                f"prediction {pid} matches no annotation: T has nothing to replace (A accepts it)"
            )
            return
        ann_id = pred.match_annotation_id
        row = self.queue_model.row_of(pid)
        if self.push(TakeGeometryCommand(self.ops, pid, ann_id), ""):
            if self.queue_mode is not None or row is None or not self.go_to_row(row):  # issue 14: stay
                self.refresh()
            self.message.emit(f"annotation {ann_id} now has prediction {pid}'s box and mask (Ctrl+Z to undo)")

    def make_box_only(self) -> None:
        """O: drop the selected item's mask; it becomes its box (``segmentation: []``)."""
        if self.selected is None:
            self.message.emit("nothing selected for O (box only)")
            return
        kind, ident = self.selected
        if kind == "pred":
            self.push(
                EditPredictionCommand(
                    self.ops, ident, box_only=True, text=f"make prediction {ident} box only"
                ),
                f"prediction {ident} is box only now (Ctrl+Z to undo)",
            )
        else:
            ann = self.project.annotation(ident)
            if ann.box_only:
                self.message.emit(f"annotation {ident} is box only already")
                return
            self.push(
                UpdateAnnotationCommand(self.ops, ann, box_only=True),
                f"annotation {ident} is box only now (Ctrl+Z to undo)",
            )

    def set_category_number(self, n: int) -> None:
        """Keys 1-9: category ``n`` for the selected item, and for objects drawn next."""
        if not 1 <= n <= len(self.categories):
            self.message.emit(f"no category {n} (this project has {len(self.categories)})")
            return
        cat = self.categories[n - 1]
        self.new_category_id = cat.id
        if self.selected is None:
            self.message.emit(f"nothing selected: objects drawn next are {cat.name}")
            return
        kind, ident = self.selected
        if kind == "pred":
            self.push(
                SetCategoryCommand(self.ops, ident, cat.id),
                f"prediction {ident}: category {cat.name} (Ctrl+Z to undo)",
            )
        else:
            ann = self.project.annotation(ident)
            if ann.category_id == cat.id:
                self.message.emit(f"annotation {ident} is {cat.name} already")
                return
            self.push(
                UpdateAnnotationCommand(self.ops, ann, category_id=cat.id),
                f"annotation {ident}: category {cat.name} (Ctrl+Z to undo)",
            )

    def _pending_on_image(self) -> list[tuple[int, float]]:
        if self.image_id is None:
            return []
        preds = self.project.predictions(image_id=self.image_id, states=(ReviewState.PENDING,))
        return [(p.id, p.score) for p in preds]

    def accept_above(self, threshold: float | None = None) -> int:
        """Accept every pending prediction of this image scoring at least the threshold (one undo)."""
        t = self.threshold if threshold is None else threshold
        ids = [pid for pid, s in self._pending_on_image() if s >= t]
        cmds: list[ReviewCommand] = [DecideCommand(self.ops, pid, ReviewState.ACCEPTED) for pid in ids]
        if not self._macro(f"accept {len(ids)} above {t:.2f}", cmds):
            return 0
        agreed = sum(1 for c in cmds if c.result is not None and c.result.agrees_with is not None)
        self.message.emit(
            f"accepted {len(ids)} predictions scoring {t:.2f} or more"
            + (f" ({agreed} matched a label: agreement recorded, no second label)" if agreed else "")
        )
        return len(ids)

    def _macro(self, text: str, cmds: list[ReviewCommand]) -> bool:
        self._quiet += 1
        try:
            push_macro(self.stack, text, cmds)
        except (FusereviewError, ValueError) as exc:
            self.message.emit(f"{exc}: nothing changed")
            return False
        finally:
            self._quiet -= 1
        self.refresh()
        return True

    def reject_below(self, threshold: float | None = None) -> int:
        """Reject every pending prediction of this image scoring below the threshold (one undo)."""
        t = self.threshold if threshold is None else threshold
        ids = [pid for pid, s in self._pending_on_image() if s < t]
        cmds: list[ReviewCommand] = [DecideCommand(self.ops, pid, ReviewState.REJECTED) for pid in ids]
        if not self._macro(f"reject {len(ids)} below {t:.2f}", cmds):
            return 0
        self.message.emit(f"rejected {len(ids)} predictions scoring below {t:.2f}")
        return len(ids)

    def undo(self) -> None:
        """Undo the last action and show what it touched."""
        self._walk_stack(undo=True)

    def redo(self) -> None:
        """Redo the last undone action."""
        self._walk_stack(undo=False)

    def _walk_stack(self, *, undo: bool) -> None:
        if not (self.stack.canUndo() if undo else self.stack.canRedo()):
            self.message.emit(f"nothing to {'undo' if undo else 'redo'}")
            return
        cmd = self.stack.command(self.stack.index() - 1 if undo else self.stack.index())
        self._quiet += 1  # one refresh when it is done, not one per change it makes
        try:
            self.stack.undo() if undo else self.stack.redo()
        finally:
            self._quiet -= 1
        self._show_command(cmd, "undone" if undo else "redone")

    def _show_command(self, cmd: QUndoCommand | None, verb: str = "") -> None:
        pid = getattr(cmd, "pid", None)
        if pid is None and cmd is not None and cmd.childCount():
            pid = getattr(cmd.child(0), "pid", None)
        if pid is not None:
            pred = self.project.prediction(pid)
            self.open_image(pred.image_id, ("pred", pid))
            row = self.queue_model.row_of(pid)
            if row is not None:
                self.queue_row = row
        else:
            self.refresh()
        text = cmd.text() if cmd is not None else ""
        self.message.emit(f"{verb}: {text}" if verb and text else text)

    # --- view options ---------------------------------------------------------------------------
    def set_layers(self, **changes: bool) -> None:
        """Toggle layers (gt, predictions, masks, labels)."""
        self.layers = replace(self.layers, **changes)
        self.refresh()

    def set_threshold(self, threshold: float) -> None:
        """Hide predictions scoring below ``threshold`` (also the macros' threshold)."""
        self.threshold = float(threshold)
        self.refresh()

    def matched_pending_count(self) -> int:
        """Pending predictions that match a label (what the default queue leaves out)."""
        row = self.project.db.read_one(
            "SELECT COUNT(*) FROM predictions WHERE state = 'pending' AND match_annotation_id IS NOT NULL"
        )
        return int(row[0]) if row else 0

    def set_queue_filter(self, **changes: Any) -> None:
        """Change the queue's order or filters and go to its first item."""
        self.queue_model.set_filter(QueueFilter(**{**self.queue_model.filter.__dict__, **changes}))
        self.queue_row = 0

    # --- tool host: correction gestures become commands -----------------------------------------
    def edit_box(self, key: Key, box: Box) -> None:
        """A box was moved or resized (one command per drag): the mask moves or is clipped with it.

        The stored box is the mask's tight box; when that is smaller than the box drawn (the
        mask does not reach the new edges) the reviewer is told, and SAM3 re-segmenting inside
        the drawn box is offered (:attr:`resegment_offered`).
        """
        if key[0] == "pred":
            ok = self.push(
                EditPredictionCommand(self.ops, key[1], box=box, text=f"edit box of prediction {key[1]}")
            )
            stored = self._stored_box(key) if ok else None
        else:
            ann = self.project.annotation(key[1])
            ok = self.push(UpdateAnnotationCommand(self.ops, ann, bbox=xyxy_to_xywh(box)))
            stored = self._stored_box(key) if ok else None
        if stored is None:
            return
        name = f"{'prediction' if key[0] == 'pred' else 'annotation'} {key[1]}"
        if max(abs(a - b) for a, b in zip(stored, box, strict=True)) > 1.0:
            self.message.emit(
                f"{name}: box fitted to its mask (the mask does not reach the new edges): "
                "Re-segment fills the new box, O makes it box only, Ctrl+Z undoes"
            )
        else:
            self.message.emit(f"{name}: box edited, the mask moved or clipped with it (Ctrl+Z to undo)")
        self.resegment_offered.emit(key, box)

    def _stored_box(self, key: Key) -> Box | None:
        """The box the canvas now shows for an item (its annotation's, once it has one)."""
        if key[0] == "pred":
            pred = self.project.prediction(key[1])
            if pred.annotation_id is None:
                return tuple(pred.box)  # type: ignore[return-value]
            x, y, w, h = self.project.annotation(pred.annotation_id).bbox
        else:
            x, y, w, h = self.project.annotation(key[1]).bbox
        return (x, y, x + w, y + h)

    def edit_mask(self, key: Key, mask: dict) -> None:
        """A brush or eraser stroke changed a mask (one command per stroke): box and area follow it."""
        from fusereview.core.geometry import rle_area

        if rle_area(mask) == 0:
            self.message.emit(
                "the mask would be empty: nothing changed (R rejects a prediction, Delete deletes a label)"
            )
            return
        if key[0] == "pred":
            self.push(
                EditPredictionCommand(self.ops, key[1], mask=mask, text=f"paint mask of prediction {key[1]}")
            )
        else:
            ann = self.project.annotation(key[1])
            self.push(UpdateAnnotationCommand(self.ops, ann, segmentation=mask))

    def edit_polygons(self, key: Key, polygons: list[list[float]]) -> None:
        """Polygon vertices were dragged, inserted or deleted."""
        if key[0] != "gt":
            self.message.emit("predictions are masks: edit them with the brush")
            return
        ann = self.project.annotation(key[1])
        self.push(UpdateAnnotationCommand(self.ops, ann, segmentation=[list(p) for p in polygons]))

    def add_box(self, box: Box) -> None:
        """A new box was drawn for a missed object (box only: ``segmentation: []``)."""
        self._add_annotation(bbox=xyxy_to_xywh(box), segmentation=None, text="draw box")

    def add_polygon(self, polygon: list[float]) -> None:
        """A new polygon was drawn for a missed object."""
        self._add_annotation(bbox=None, segmentation=[list(polygon)], text="draw polygon")

    def _add_annotation(self, *, bbox: Any, segmentation: Any, text: str) -> bool:
        """Push one undoable "add" of the current category on the current image, then select it."""
        if self.image_id is None:
            return False
        cmd = AddAnnotationCommand(
            self.ops, self.image_id, self.new_category_id, bbox=bbox, segmentation=segmentation, text=text
        )
        if self.push(cmd) and cmd.created is not None:
            self.select(("gt", cmd.created.id))
            self.message.emit(f"added annotation {cmd.created.id} (Ctrl+Z to undo)")
            return True
        return False

    def refine(self, box: Box, target: Key | None = None) -> None:
        """A SAM3 box prompt was drawn: ask for a background segmentation.

        ``target`` (default: the selected item) is the prediction or annotation whose mask the
        result replaces; without one, the result is a new object.
        """
        if self.image_id is None:
            return
        target = self.selected if target is None else target
        cat = self.new_category_id
        if target is not None and target[0] == "pred":
            cat = self.project.prediction(target[1]).category_id
        elif target is not None:
            cat = self.project.annotation(target[1]).category_id
        self.refine_requested.emit(self.image_id, box, cat, target)

    def apply_refine(
        self, image_id: int, detections: list[Any], target: Key | None, box: Box | None = None
    ) -> bool:
        """Use the best detection of a refine, through the geometry rule; False when nothing changed.

        Each detection's mask is first cut to the drawn box (``box``, plus the rule's margin: the
        reviewer asked about that region), then made an instance with SAM3's own box; a result
        without a usable mask changes nothing and says so.
        """
        from fusereview.core.instances import InstanceError, clip_mask, detection_instance, margin_px

        img = self.project.image(image_id)
        usable = []
        for d in detections:
            mask = d.mask
            if mask is not None and box is not None:
                m = margin_px(box)
                mask = clip_mask(mask, (box[0] - m, box[1] - m, box[2] + m, box[3] + m))
            try:
                inst = detection_instance(d.box, mask, img.height, img.width)
            except InstanceError:
                continue
            if inst.mask is not None:
                usable.append((d.score, inst, d.category_id))
        if not usable:
            self.message.emit("SAM3 found no object with a mask in that box: nothing changed")
            return False
        _, best, found_category = max(usable, key=lambda t: t[0])
        if target is not None and target[0] == "pred":
            return self.push(
                EditPredictionCommand(
                    self.ops, target[1], mask=best.mask, text=f"re-segment prediction {target[1]}"
                ),
                f"prediction {target[1]}: SAM3 mask ({best.note}); Ctrl+Z to undo",
            )
        if target is not None:
            ann = self.project.annotation(target[1])
            return self.push(
                UpdateAnnotationCommand(self.ops, ann, segmentation=best.mask),
                f"annotation {target[1]}: SAM3 mask ({best.note}); Ctrl+Z to undo",
            )
        cmd = AddAnnotationCommand(
            self.ops,
            image_id,
            found_category,
            bbox=None,
            segmentation=best.mask,
            text="SAM3 refine",
        )
        if self.push(cmd) and cmd.created is not None:
            self.message.emit(f"added annotation {cmd.created.id} from SAM3 (Ctrl+Z to undo)")
            return True
        return False

    # --- click to segment (issue 15): the Click tool's host --------------------------------------------
    def say(self, text: str) -> None:
        """A status message from a tool."""
        self.message.emit(text)

    def click_image_path(self) -> Path:
        """The file of the image shown (the Click tool's job decodes it on the first click)."""
        assert self.image_id is not None
        return self.project.image_path(self.image_id)

    def accept_click_mask(self, mask: dict, target: Key | None = None) -> bool:
        """Enter with the Click tool: one undoable command, through the geometry rule (ADR 0020).

        Without ``target``, a new annotation of the current category (bbox = the mask's tight box,
        area = its pixels); with one, the selected prediction's or annotation's mask is replaced.
        Returns whether something changed; an empty mask changes nothing and says so.
        """
        from fusereview.core.geometry import rle_area

        if self.image_id is None:
            return False
        if rle_area(mask) == 0:
            self.message.emit("the click mask is empty: nothing changed (left-click on the object)")
            return False
        if target is not None and target[0] == "pred":
            return self.push(
                EditPredictionCommand(
                    self.ops, target[1], mask=mask, text=f"click mask for prediction {target[1]}"
                ),
                f"prediction {target[1]}: click mask (Ctrl+Z to undo)",
            )
        if target is not None:
            return self.push(
                UpdateAnnotationCommand(self.ops, self.project.annotation(target[1]), segmentation=mask),
                f"annotation {target[1]}: click mask (Ctrl+Z to undo)",
            )
        return self._add_annotation(bbox=None, segmentation=mask, text="click to segment")

    # --- export --------------------------------------------------------------------------------------
    def export(self, out: Path | None = None) -> list[Path]:
        """Export COCO (default ``<project>/exports/coco/``); what was exported is 'clean'."""
        out = out or self.project.root / "exports" / "coco"
        written = self.project.export_coco(out)
        self.stack.setClean()
        self.message.emit(f"exported {len(written)} file(s) to {out}")
        return written
