"""Review decisions on predictions: what accepting, rejecting, editing and agreeing write.

Every decision goes through :meth:`DecisionsMixin.decide_many` (one transaction, all or none) and
follows the geometry rule of :mod:`fusereview.core.instances`: an accepted prediction becomes
exactly the instance that was stored and shown; an edited one keeps box and mask together. A
prediction that matches an existing annotation (:mod:`fusereview.core.matching`) is never turned
into a second label of the same object: accepting it records *agreement*, and only the explicit
``take_geometry`` replaces the label's geometry with the prediction's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from fusereview.core.events import Event, EventHub
from fusereview.core.instances import InstanceError, annotation_geometry, edited_box_mask
from fusereview.core.project_records import ANN_COLUMNS, annotation_from_row, dumps
from fusereview.core.project_schema import Database, ProjectError, UnknownIdError, now_utc
from fusereview.core.records import RLE, Annotation, ImageRecord, Prediction, ReviewState


class Plan(NamedTuple):
    """What one decision does."""

    state: ReviewState
    #: "create" | "update" (the linked annotation) | "delete" | "agree" | "replace" (the matched
    #: annotation's geometry) | "none"
    action: str
    geometry: tuple[Any, Any, float] | None  # (bbox xywh, segmentation, area)
    category_id: int
    annotation_id: int | None  # the annotation "update"/"replace"/"agree" act on
    detail: str  # recorded with the decision (the history says what happened)
    #: (annotation id, IoU) the prediction is recorded as matching afterwards ("replace" on a
    #: label named by ``label_id``: the label is now the prediction's object, so it agrees)
    match: tuple[int, float] | None = None


def annotation_mask(ann: Annotation, height: int, width: int) -> RLE | None:
    """The mask of an annotation (``None`` when box only)."""
    from fusereview.core.geometry import segmentation_to_rle

    if ann.box_only:
        return None
    return segmentation_to_rle(ann.segmentation, height, width)


class DecisionsMixin:
    """The decision methods of :class:`~fusereview.core.project.Project` (see there)."""

    # provided by Project
    root: Path
    events: EventHub
    _db: Database

    def decide(
        self,
        prediction_id: int,
        state: ReviewState | str,
        *,
        by: str = "",
        box: Any = None,
        mask: RLE | None = None,
        category_id: int | None = None,
        box_only: bool = False,
        take_geometry: bool = False,
        take_category: bool = False,
        label_id: int | None = None,
        note: str = "",
    ) -> Prediction:
        """Record a review decision on one prediction (committed before returning).

        - ``ACCEPTED``: the prediction's stored instance becomes an annotation (source
          ``"review"``, extra ``{"fusereview": {model, score, prediction_id}}``) linked by
          ``Prediction.annotation_id``: bbox, segmentation and area exactly those of the instance
          (box only: ``segmentation: []``, area w·h). A *matched* prediction instead records
          agreement with its annotation (no second label of one object); with
          ``take_geometry=True`` the matched annotation's geometry is replaced by the prediction's.
        - ``EDITED`` (or accepting with ``box``/``mask``/``category_id``/``box_only``): the same
          with the change. A new box moves or clips the mask with it (the stored bbox is then
          the mask's tight box); a new mask gives bbox and area from it; ``box_only`` drops the
          mask. Geometry edits of a matched prediction are refused (edit the annotation, or take
          its geometry): they would add a second label of one object.
        - ``REJECTED`` and ``PENDING`` delete a linked annotation (never one it agreed with).
        - ``take_category=True``: the matched annotation takes the prediction's category (its
          geometry stays, unless ``take_geometry`` too). ``label_id`` names the annotation that
          takes geometry or category instead of the matched one (a label-issue fix: the
          prediction overlaps it too little to match, or is of another category); the
          prediction is then recorded as matching it, so it reads as agreement.
        - ``note`` is appended to the decision's ``detail`` in the history (why it was taken).

        Raises
        ------
        InstanceError
            The result would have no area (an empty mask, a box without the mask's pixels).
        ProjectError
            An edit of a matched prediction, ``take_geometry``/``take_category`` without a match or
            ``label_id``, a mask of another size.
        """
        return self.decide_many(
            [prediction_id],
            state,
            by=by,
            box=box,
            mask=mask,
            category_id=category_id,
            box_only=box_only,
            take_geometry=take_geometry,
            take_category=take_category,
            label_id=label_id,
            note=note,
        )[0]

    def decide_many(
        self,
        prediction_ids: list[int],
        state: ReviewState | str,
        *,
        by: str = "",
        box: Any = None,
        mask: RLE | None = None,
        category_id: int | None = None,
        box_only: bool = False,
        take_geometry: bool = False,
        take_category: bool = False,
        label_id: int | None = None,
        note: str = "",
    ) -> list[Prediction]:
        """:meth:`decide` for several predictions in one transaction (all or none)."""
        state = ReviewState(state)
        prediction_ids = list(dict.fromkeys(prediction_ids))  # twice in the list: decided once
        if category_id is not None:
            self._check_category(category_id)  # type: ignore[attr-defined]
        changed_annotations: list[int] = []
        at = now_utc()
        # read, plan and write in one IMMEDIATE transaction: another process cannot change these
        # predictions between our reading and our writing, and a plan that raises writes nothing
        with self._db.write() as conn:
            preds = {p.id: p for p in self._predictions_by_id(list(prediction_ids))}  # type: ignore[attr-defined]
            for pid in prediction_ids:
                if pid not in preds:
                    raise UnknownIdError(f"project {self.root.name} has no prediction with id {pid}")
            planned = []
            for pid in prediction_ids:
                pred = preds[pid]
                image = self.image(pred.image_id)  # type: ignore[attr-defined]
                edits = {"box": box, "mask": mask, "category_id": category_id, "box_only": box_only}
                takes = {"geometry": take_geometry, "category": take_category, "label_id": label_id}
                planned.append((pred, self._plan(pred, image, state, edits, takes)))
            for pred, plan in planned:
                ann_id = pred.annotation_id
                if plan.action == "create":
                    extra = {
                        "fusereview": {"model": pred.model, "score": pred.score, "prediction_id": pred.id}
                    }
                    assert plan.geometry is not None
                    ann_id = self._insert_annotation(  # type: ignore[attr-defined]
                        conn, pred.image_id, plan.category_id, plan.geometry, "review", extra
                    )
                    changed_annotations.append(ann_id)
                elif plan.action in ("update", "replace"):
                    target = plan.annotation_id
                    if plan.geometry is not None:
                        bbox, seg, area = plan.geometry
                        conn.execute(
                            "UPDATE annotations SET bbox = ?, segmentation = ?, area = ?, category_id = ?,"
                            " geometry_edited_at = ? WHERE id = ?",
                            (dumps(list(bbox)), dumps(seg), area, plan.category_id, at, target),
                        )
                    else:
                        conn.execute(
                            "UPDATE annotations SET category_id = ? WHERE id = ?", (plan.category_id, target)
                        )
                    changed_annotations.append(int(target))  # type: ignore[arg-type]
                    if plan.action == "replace":
                        ann_id = None  # the label is not the prediction's: rejecting it later keeps it
                elif plan.action == "delete":
                    conn.execute("UPDATE annotations SET deleted = 1 WHERE id = ?", (ann_id,))
                    changed_annotations.append(int(ann_id))  # type: ignore[arg-type]
                    ann_id = None
                elif plan.action == "agree":
                    ann_id = None
                conn.execute(
                    "UPDATE predictions SET state = ?, decided_by = ?, decided_at = ?, annotation_id = ? WHERE id = ?",
                    (plan.state.value, by, at, ann_id, pred.id),
                )
                if plan.match is not None:
                    conn.execute(
                        "UPDATE predictions SET match_annotation_id = ?, match_iou = ?, match_kind = 'match'"
                        " WHERE id = ?",
                        (plan.match[0], round(plan.match[1], 4), pred.id),
                    )
                conn.execute(
                    "INSERT INTO decisions (prediction_id, state, decided_by, decided_at, detail)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (pred.id, plan.state.value, by, at, "; ".join(t for t in (plan.detail, note) if t)),
                )
            rematched = self._rematch(conn, {p.image_id for p, _ in planned})  # type: ignore[attr-defined]
        if prediction_ids:
            self.events.emit(Event("decided", tuple(prediction_ids)))
        if changed_annotations:
            self.events.emit(Event("annotation_changed", tuple(changed_annotations)))
        others = tuple(pid for pid in rematched if pid not in preds)
        if others:
            self.events.emit(Event("matches_changed", others))
        found = {p.id: p for p in self._predictions_by_id(list(prediction_ids))}  # type: ignore[attr-defined]
        return [found[pid] for pid in prediction_ids]

    def _live_annotation(self, annotation_id: int | None) -> Annotation | None:
        if annotation_id is None:
            return None
        row = self._db.read_one(
            f"SELECT {ANN_COLUMNS} FROM annotations WHERE id = ? AND deleted = 0", (annotation_id,)
        )
        return annotation_from_row(row) if row else None

    def _plan(
        self,
        pred: Prediction,
        image: ImageRecord,
        state: ReviewState,
        edits: dict[str, Any],
        takes: dict[str, Any],
    ) -> Plan:
        """What a decision does (raises before anything is written when it cannot be done)."""
        box, mask, category_id, box_only = (
            edits["box"],
            edits["mask"],
            edits["category_id"],
            edits["box_only"],
        )
        geometry_edit = box is not None or mask is not None or box_only
        any_edit = geometry_edit or category_id is not None
        linked = self._live_annotation(pred.annotation_id)
        name = f"prediction {pred.id}"
        take_geometry, take_category, label_id = takes["geometry"], takes["category"], takes["label_id"]
        if state in (ReviewState.PENDING, ReviewState.REJECTED):
            if any_edit or take_geometry or take_category or label_id is not None:
                raise ValueError(f"a {state.value} decision takes no box, mask, category or geometry")
            return Plan(state, "delete" if linked else "none", None, pred.category_id, None, "")
        matched = self._live_annotation(pred.match_annotation_id) if pred.matched and linked is None else None
        if label_id is not None and not (take_geometry or take_category):
            raise ValueError("label_id names the annotation that takes the prediction's geometry or category")
        if take_geometry or take_category:
            return self._plan_take(pred, linked, matched, any_edit, takes)
        if matched is not None:
            if any_edit:
                raise ProjectError(
                    f"{name} matches annotation {matched.id}: edit that annotation, or take this "
                    "prediction's geometry for it (T); an edited copy would label the object twice"
                )
            return Plan(
                ReviewState.ACCEPTED,
                "agree",
                None,
                matched.category_id,
                matched.id,
                f"agrees with annotation {matched.id} (IoU {pred.match_iou or 0:.2f})",
            )
        if mask is not None and list(mask.get("size", [])) != [image.height, image.width]:
            raise ProjectError(
                f"{image.file_name}: edited mask size {mask.get('size')} is not [{image.height}, {image.width}]"
            )
        new_state = ReviewState.EDITED if any_edit or state == ReviewState.EDITED else state
        if linked is not None and pred.state == ReviewState.EDITED:
            new_state = ReviewState.EDITED  # accepting an edited prediction keeps its edits
        if linked is not None and not any_edit:
            return Plan(new_state, "none", None, linked.category_id, linked.id, "")
        cat = category_id if category_id is not None else (linked.category_id if linked else pred.category_id)
        if linked is not None and not geometry_edit:  # a category change keeps the geometry as it is
            return Plan(new_state, "update", None, cat, linked.id, "category changed")
        if linked is not None:
            x, y, w, h = linked.bbox
            cur_box, cur_mask = (x, y, x + w, y + h), annotation_mask(linked, image.height, image.width)
        else:
            cur_box, cur_mask = tuple(pred.box), pred.mask
        if box_only:
            geometry = annotation_geometry(None, box if box is not None else cur_box)
            detail = "box only"
        elif mask is not None:
            geometry = annotation_geometry(mask)
            detail = "mask edited"
        elif box is not None:
            new_mask, detail = edited_box_mask(cur_box, box, cur_mask)
            if cur_mask is not None and new_mask is not None and not _has_pixels(new_mask):
                raise InstanceError(
                    "the new box holds none of the mask: nothing changed "
                    "(make it box only, or re-segment inside the box)"
                )
            geometry = annotation_geometry(new_mask, box)
            detail = detail or "box edited"
        else:
            geometry = annotation_geometry(cur_mask, cur_box)
            detail = ""
        action = "update" if linked is not None else "create"
        return Plan(new_state, action, geometry, cat, linked.id if linked else None, detail)

    def _plan_take(
        self,
        pred: Prediction,
        linked: Annotation | None,
        matched: Annotation | None,
        any_edit: bool,
        takes: dict[str, Any],
    ) -> Plan:
        """An annotation takes the prediction's geometry and/or category (``decide``'s ``take_*``)."""
        take_geometry, take_category, label_id = takes["geometry"], takes["category"], takes["label_id"]
        name = f"prediction {pred.id}"
        if any_edit:
            raise ValueError("take_geometry / take_category take no box, mask or category of their own")
        if label_id is not None:
            if linked is not None:
                raise ProjectError(
                    f"{name} is annotation {linked.id} already: there is no other label to change"
                )
            target = self._live_annotation(label_id)
            if target is None:
                raise ProjectError(
                    f"{name}: annotation {label_id} does not exist (deleted?): nothing to change"
                )
        elif matched is None:
            raise ProjectError(f"{name} matches no annotation: there is no label to replace")
        else:
            target = matched
        if take_category and target.category_id == pred.category_id and not take_geometry:
            raise ProjectError(f"annotation {target.id} has {name}'s category already: nothing to change")
        geometry = annotation_geometry(pred.mask, pred.box) if take_geometry else None
        category = pred.category_id if take_category else target.category_id
        detail = []
        if take_geometry:
            detail.append(f"replaced the geometry of annotation {target.id}")
        if take_category and target.category_id != pred.category_id:
            detail.append(
                f"changed the category of annotation {target.id} from {target.category_id} to {pred.category_id}"
            )
        match = None
        if label_id is not None:
            iou = 1.0 if take_geometry else self._prediction_label_iou(pred, target)
            match = (target.id, iou)
        return Plan(ReviewState.ACCEPTED, "replace", geometry, category, target.id, "; ".join(detail), match)

    def _prediction_label_iou(self, pred: Prediction, ann: Annotation) -> float:
        """The matcher's IoU of a prediction and an annotation (masks when both have one)."""
        from fusereview.core.matching import Candidate, annotation_candidate, iou_matrix

        image = self.image(pred.image_id)  # type: ignore[attr-defined]
        cand = annotation_candidate(
            ann.id, ann.category_id, ann.bbox, ann.segmentation, image.height, image.width
        )
        p = Candidate(pred.id, pred.category_id, tuple(pred.box), pred.mask, pred.score)  # type: ignore[arg-type]
        return float(iou_matrix([p], [cand])[0, 0])


def _has_pixels(mask: RLE) -> bool:
    from fusereview.core.geometry import rle_area

    return rle_area(mask) > 0
