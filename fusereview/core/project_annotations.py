"""Annotations of a project: ground truth and reviewed, added, edited, deleted and restored (undo)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fusereview.core.events import Event, EventHub
from fusereview.core.geometry import rle_area, segmentation_to_rle
from fusereview.core.instances import InstanceError, annotation_geometry, edited_box_mask, is_box_only
from fusereview.core.project_records import (
    ANN_COLUMNS,
    annotation_from_row,
    dumps,
    geometry_from_segmentation,
)
from fusereview.core.project_schema import Database, UnknownIdError, now_utc
from fusereview.core.records import Annotation, ImageRecord


class AnnotationsMixin:
    """The annotation methods of :class:`~fusereview.core.project.Project` (see there)."""

    # provided by Project
    root: Path
    events: EventHub
    _db: Database

    # ----------------------------------------------------------------------------------- annotations
    def annotations(self, image_id: int | None = None, split: str | None = None) -> list[Annotation]:
        """Ground-truth and reviewed annotations (of one image, or one split), in id order."""
        sql = f"SELECT {', '.join('a.' + c.strip() for c in ANN_COLUMNS.split(','))} FROM annotations a"
        where, params = ["a.deleted = 0"], []
        if split is not None:
            sql += " JOIN images i ON i.id = a.image_id"
            where.append("i.split = ?")
            params.append(split)
        if image_id is not None:
            where.append("a.image_id = ?")
            params.append(image_id)
        rows = self._db.read(f"{sql} WHERE {' AND '.join(where)} ORDER BY a.id", params)
        return [annotation_from_row(r) for r in rows]

    def annotation(self, annotation_id: int) -> Annotation:
        """One (not deleted) annotation; raises :class:`UnknownIdError` if there is none."""
        row = self._db.read_one(
            f"SELECT {ANN_COLUMNS} FROM annotations WHERE id = ? AND deleted = 0", (annotation_id,)
        )
        if row is None:
            raise UnknownIdError(f"project {self.root.name} has no annotation with id {annotation_id}")
        return annotation_from_row(row)

    def _emit_matches(self, ids: tuple[int, ...]) -> None:
        if ids:
            self.events.emit(Event("matches_changed", ids))

    @staticmethod
    def _record_linked_state(
        conn: sqlite3.Connection, annotation_id: int, state: str, by: str, *, unlink: bool = False
    ) -> tuple[int, ...]:
        """Set the state of the predictions linked to an annotation, recorded like a decision.

        Every state change of a prediction says who and when (``decided_by``/``decided_at``) and
        is appended to ``decisions``, whichever path made it (a decision, or an edit or delete of
        the annotation it became). Returns the ids of the predictions changed.
        """
        at = now_utc()
        link = ", annotation_id = NULL" if unlink else ""
        changed = conn.execute(
            f"UPDATE predictions SET state = ?, decided_by = ?, decided_at = ?{link} WHERE annotation_id = ?"
            " RETURNING id",
            (state, by, at, annotation_id),
        ).fetchall()
        ids = tuple(int(r[0]) for r in changed)
        conn.executemany(
            "INSERT INTO decisions (prediction_id, state, decided_by, decided_at) VALUES (?, ?, ?, ?)",
            [(pid, state, by, at) for pid in ids],
        )
        return ids

    def _insert_annotation(
        self,
        conn: sqlite3.Connection,
        image_id: int,
        category_id: int,
        geometry: tuple[tuple[float, ...], Any, float],
        source: str,
        extra: dict[str, Any] | None,
    ) -> int:
        bbox, segmentation, area = geometry
        split = conn.execute("SELECT split FROM images WHERE id = ?", (image_id,)).fetchone()[0]
        coco_id = conn.execute("SELECT next_ann_coco_id FROM splits WHERE name = ?", (split,)).fetchone()[0]
        conn.execute("UPDATE splits SET next_ann_coco_id = ? WHERE name = ?", (coco_id + 1, split))
        cur = conn.execute(
            "INSERT INTO annotations (image_id, coco_id, category_id, bbox, segmentation, area, iscrowd, source, extra)"
            " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                image_id,
                coco_id,
                category_id,
                dumps(list(bbox)),
                dumps(segmentation),
                area,
                source,
                dumps(extra) if extra else None,
            ),
        )
        return int(cur.lastrowid or 0)

    def _geometry(
        self, image: ImageRecord, bbox: Any, segmentation: Any
    ) -> tuple[tuple[float, ...], Any, float]:
        """The COCO fields of a drawn or edited annotation, holding the invariants of core.instances.

        A segmentation gives the bbox (its tight box) and the area (its pixel count); an RLE is
        stored as polygons when they hold exactly its pixels. Without one, the box is the object:
        ``segmentation: []``, area w·h. ``bbox`` is ignored when there is a segmentation.
        """
        from fusereview.core.geometry import segmentation_to_rle

        if segmentation is not None and not is_box_only(segmentation):
            if isinstance(segmentation, dict):
                rle = segmentation_to_rle(segmentation, image.height, image.width)
                return annotation_geometry(rle)
            box, seg, area = geometry_from_segmentation(segmentation, image.height, image.width)
            if area <= 0:
                raise InstanceError("the drawn shape covers no pixel: nothing was added")
            return box, seg, area
        if bbox is None:
            raise InstanceError("an annotation needs a box or a segmentation")
        x, y, w, h = (float(v) for v in bbox)
        return annotation_geometry(None, (x, y, x + w, y + h))

    def add_annotation(
        self,
        image_id: int,
        category_id: int,
        *,
        bbox: Any = None,
        segmentation: Any = None,
        source: str = "review",
        extra: dict[str, Any] | None = None,
    ) -> Annotation:
        """Add an annotation drawn by the reviewer.

        Parameters
        ----------
        bbox:
            COCO ``[x, y, w, h]`` of a box-only object (ignored with a segmentation: the bbox
            is then the segmentation's tight box).
        segmentation:
            Polygons or an RLE; ``None`` or ``[]``: box only (``segmentation: []``, area w·h).
        extra:
            Extra keys written with the annotation on export.
        """
        image = self.image(image_id)
        self._check_category(category_id)
        geometry = self._geometry(image, bbox, segmentation)
        with self._db.write() as conn:
            aid = self._insert_annotation(conn, image_id, category_id, geometry, source, extra)
            rematched = self._rematch(conn, [image_id])  # type: ignore[attr-defined]
        self.events.emit(Event("annotation_changed", (aid,)))
        self._emit_matches(rematched)
        return self.annotation(aid)

    def update_annotation(
        self,
        annotation_id: int,
        *,
        bbox: Any = None,
        segmentation: Any = None,
        category_id: int | None = None,
        box_only: bool = False,
        by: str = "",
    ) -> Annotation:
        """Change an annotation's geometry or category, keeping box and mask together.

        A new segmentation gives bbox and area (its tight box and pixel count). A new ``bbox``
        (xywh) moves the mask with it (same size) or clips the mask to it (resized); the stored
        bbox is then the mask's tight box. ``box_only`` drops the mask (``segmentation: []``,
        area w·h of the given or current box). An annotation made from a prediction marks that
        prediction ``EDITED``, recorded as a decision of ``by`` (the reviewer's name) now.

        Raises
        ------
        InstanceError
            The result would have no area (nothing is changed).
        """
        # read and write in one transaction: another process cannot slip a change in between
        with self._db.write() as conn:
            old = self.annotation(annotation_id)
            if category_id is not None:
                self._check_category(category_id)
            image = self.image(old.image_id)
            box, seg, area = old.bbox, old.segmentation, old.area
            edited_at = old.geometry_edited_at
            if box_only:
                x, y, w, h = (float(v) for v in (bbox if bbox is not None else old.bbox))
                box, seg, area = annotation_geometry(None, (x, y, x + w, y + h))
                edited_at = now_utc()
            elif segmentation is not None:
                box, seg, area = self._geometry(image, None, segmentation)
                edited_at = now_utc()
            elif bbox is not None:
                x, y, w, h = (float(v) for v in bbox)
                new_box = (x, y, x + w, y + h)
                ox, oy, ow, oh = old.bbox
                mask = (
                    None if old.box_only else segmentation_to_rle(old.segmentation, image.height, image.width)
                )
                new_mask, _ = edited_box_mask((ox, oy, ox + ow, oy + oh), new_box, mask)
                if mask is not None and new_mask is not None and rle_area(new_mask) == 0:
                    raise InstanceError(
                        f"annotation {annotation_id}: the new box holds none of the mask: nothing changed"
                    )
                box, seg, area = annotation_geometry(new_mask, new_box)
                edited_at = now_utc()
            conn.execute(
                "UPDATE annotations SET bbox = ?, segmentation = ?, area = ?, category_id = ?,"
                " geometry_edited_at = ? WHERE id = ?",
                (
                    dumps(list(box)),
                    dumps(seg),
                    area,
                    category_id if category_id is not None else old.category_id,
                    edited_at,
                    annotation_id,
                ),
            )
            linked = self._record_linked_state(conn, annotation_id, "edited", by)
            rematched = self._rematch(conn, [old.image_id])  # type: ignore[attr-defined]
        self._emit_matches(rematched)
        self.events.emit(Event("annotation_changed", (annotation_id,)))
        if linked:
            self.events.emit(Event("decided", linked))
        return self.annotation(annotation_id)

    def delete_annotation(self, annotation_id: int, *, by: str = "") -> Annotation:
        """Delete an annotation and return it (for undo).

        A linked prediction becomes ``REJECTED``, recorded as a decision of ``by`` now.
        """
        with self._db.write() as conn:
            old = self.annotation(annotation_id)
            conn.execute("UPDATE annotations SET deleted = 1 WHERE id = ?", (annotation_id,))
            linked = self._record_linked_state(conn, annotation_id, "rejected", by, unlink=True)
            rematched = self._rematch(conn, [old.image_id])  # type: ignore[attr-defined]
        self.events.emit(Event("annotation_changed", (annotation_id,)))
        self._emit_matches(rematched)
        if linked:
            self.events.emit(Event("decided", linked))
        return old

    def restore_annotation(self, annotation: Annotation, *, by: str = "", state: str | None = None) -> None:
        """Undo :meth:`delete_annotation` (or any change): the annotation comes back exactly as given.

        Every field is written as the snapshot holds it (bbox, segmentation, area, category,
        extra, when its geometry was edited), so undoing an edit gives back the very bytes the
        export had; a live annotation is overwritten the same way.

        A prediction it was made from is linked to it again, in ``state`` (``"accepted"`` or
        ``"edited"``) when given — an undo knows the state it returns to — else in the state it
        had before the delete: ``EDITED`` if its latest accepting decision was an edit, else
        ``ACCEPTED`` (read from the ``decisions`` history). The change is recorded as a decision
        of ``by`` now.
        """
        if state is not None and state not in ("accepted", "edited"):
            raise ValueError(f"a restored annotation's prediction is accepted or edited, not {state!r}")
        row = self._db.read_one("SELECT deleted FROM annotations WHERE id = ?", (annotation.id,))
        if row is None:
            raise UnknownIdError(f"project {self.root.name} never had an annotation with id {annotation.id}")
        pred_id = (annotation.extra.get("fusereview") or {}).get("prediction_id")
        with self._db.write() as conn:
            conn.execute(
                "UPDATE annotations SET deleted = 0, category_id = ?, bbox = ?, segmentation = ?, area = ?,"
                " iscrowd = ?, extra = ?, geometry_edited_at = ? WHERE id = ?",
                (
                    annotation.category_id,
                    dumps(list(annotation.bbox)),
                    dumps(annotation.segmentation),
                    annotation.area,
                    annotation.iscrowd,
                    dumps(annotation.extra) if annotation.extra else None,
                    annotation.geometry_edited_at,
                    annotation.id,
                ),
            )
            relinked = []
            if pred_id is not None:
                # a linked prediction is accepted or edited; the delete recorded "rejected" on
                # top, so the latest of those two in its history is the state to come back to
                last = conn.execute(
                    "SELECT state FROM decisions WHERE prediction_id = ? AND state IN ('accepted', 'edited')"
                    " ORDER BY id DESC LIMIT 1",
                    (pred_id,),
                ).fetchone()
                if state is None:
                    state = last[0] if last else "accepted"
                at = now_utc()
                relinked = conn.execute(
                    "UPDATE predictions SET state = ?, decided_by = ?, decided_at = ?, annotation_id = ?"
                    " WHERE id = ? AND annotation_id IS NULL RETURNING id",
                    (state, by, at, annotation.id, pred_id),
                ).fetchall()
                if relinked:
                    conn.execute(
                        "INSERT INTO decisions (prediction_id, state, decided_by, decided_at) VALUES (?, ?, ?, ?)",
                        (int(pred_id), state, by, at),
                    )
            rematched = self._rematch(conn, [annotation.image_id])  # type: ignore[attr-defined]
        self.events.emit(Event("annotation_changed", (annotation.id,)))
        self._emit_matches(rematched)
        if relinked:
            self.events.emit(Event("decided", (int(pred_id),)))
