"""Predictions of a project (the per-image cache of model output) and review decisions on them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fusereview.core.events import Event, EventHub
from fusereview.core.project_records import (
    ANN_COLUMNS,
    PRED_COLUMNS,
    annotation_from_row,
    box_polygon,
    dumps,
    geometry_from_mask,
    prediction_from_row,
    xyxy_to_xywh,
)
from fusereview.core.project_schema import Database, ProjectError, UnknownIdError, now_utc
from fusereview.core.records import RLE, Detection, ImageRecord, Prediction, ReviewState


def category_key_prefix(category_id: int) -> str:
    """The prefix that marks a prediction cache key as belonging to one category: ``c<id>-``.

    :func:`fusereview.models.base.cache_key` starts every key made with a ``category_id`` with it,
    so that :meth:`PredictionsMixin.store_predictions` can find the cache entries of a category
    (prompt and threshold are hashed, the category is not: two categories prompted with the same
    text must never share an entry).
    """
    return f"c{int(category_id)}-"


class PredictionsMixin:
    """The prediction and decision methods of :class:`~fusereview.core.project.Project` (see there)."""

    # provided by Project
    root: Path
    events: EventHub
    _db: Database

    # ----------------------------------------------------------------------------------- predictions
    def store_predictions(
        self,
        image_id: int,
        model: str,
        cache_key: str,
        detections: list[Detection],
        *,
        category_id: int | None = None,
    ) -> list[Prediction]:
        """Store one image's detections from one model run, and mark the image as cached for it.

        The stored set becomes the *current* prediction set of (image, category), for every
        category it is for: ``category_id`` when given (then every detection must be of that
        category, and an empty list still counts: "this prompt finds nothing here"), else the
        categories of the detections.

        Superseding (what happens to older predictions of the same image and category):

        - *Pending* predictions of that image and category are **deleted**, whatever their model
          or cache key (an older prompt, threshold or model), as are earlier pending predictions
          of the same (image, model, cache key). They are model output nobody has looked at yet,
          and the review queue must show only current predictions. Deleting them (rather than
          giving them a hidden state) keeps every reader right without a filter: the queue, the
          pending counts and ``only_reviewed`` export. Their ids are never handed out again
          (AUTOINCREMENT); subscribers hear of them as ``predictions_removed``.
        - *Decided* predictions (accepted, rejected, edited) are kept: they are the reviewer's work.
        - The cache entries of those older sets are dropped (entries whose key has the category's
          :func:`category_key_prefix`, or that hold a prediction of this image and category), so
          that switching back to an older prompt predicts again instead of finding a set whose
          pending predictions are gone. An entry with an untagged key and no prediction of the
          category cannot be told apart and stays.

        Parameters
        ----------
        image_id, model, cache_key:
            The cache entry: image, model fingerprint and
            :func:`~fusereview.models.base.cache_key` (prompt, threshold, category).
        detections:
            The model's detections for this image.
        category_id:
            The category this set answers (the model layer always passes it; keyword only, for
            the callers written before it existed).

        Raises
        ------
        ProjectError
            A detection's mask is not at the image's size, or its category is unknown or not
            ``category_id``.
        """
        image = self.image(image_id)
        if category_id is not None:
            self._check_category(category_id)
        rows = []
        for i, det in enumerate(detections):
            self._check_category(det.category_id)
            if category_id is not None and det.category_id != category_id:
                raise ProjectError(
                    f"{image.file_name}: detection {i}: category {det.category_id} in a prediction set "
                    f"stored for category {category_id}"
                )
            if det.mask is not None and list(det.mask.get("size", [])) != [image.height, image.width]:
                raise ProjectError(
                    f"{image.file_name}: detection {i}: mask size {det.mask.get('size')} is not the image's "
                    f"[{image.height}, {image.width}]"
                )
            mask = dumps({"size": list(det.mask["size"]), "counts": det.mask["counts"]}) if det.mask else None
            rows.append(
                (
                    image_id,
                    det.category_id,
                    model,
                    cache_key,
                    det.prompt,
                    float(det.score),
                    *map(float, det.box),
                    mask,
                )
            )
        categories = sorted({category_id} if category_id is not None else {d.category_id for d in detections})
        current = self._current_hash(image_id)
        with self._db.write() as conn:
            removed = self._supersede(conn, image_id, model, cache_key, categories)
            # AUTOINCREMENT: the ids of replaced predictions are never handed out again (a view
            # holding an old id must not find another prediction under it)
            first = self._prediction_sequence(conn) + 1
            conn.executemany(
                "INSERT INTO predictions (image_id, category_id, model, cache_key, prompt, score, x0, y0, x1, y1, mask)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            last = self._prediction_sequence(conn)
            content_hash = current[0] if current else ""
            conn.execute(
                "INSERT OR REPLACE INTO prediction_cache (image_id, model, cache_key, content_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (image_id, model, cache_key, content_hash, now_utc()),
            )
            if current:
                conn.execute(
                    "UPDATE images SET content_hash = ?, hash_stat = ? WHERE id = ?", (*current, image_id)
                )
        ids = tuple(range(first, last + 1))
        if len(ids) != len(rows):  # cannot happen inside one IMMEDIATE transaction; never hide it
            raise ProjectError(f"project {self.root.name}: prediction ids not consecutive")
        if removed:
            self.events.emit(Event("predictions_removed", removed))
        if ids:
            self.events.emit(Event("predictions_added", ids))
        return self._predictions_by_id(ids)

    @staticmethod
    def _supersede(
        conn: sqlite3.Connection, image_id: int, model: str, cache_key: str, categories: list[int]
    ) -> tuple[int, ...]:
        """Delete what a new set of (image, model, cache key) for ``categories`` supersedes.

        Returns the ids of the deleted pending predictions (see :meth:`store_predictions`).
        """
        # cache entries first: the rule "holds a prediction of this category" must still see the
        # pending rows deleted below
        for cat in categories:
            prefix = category_key_prefix(cat)
            conn.execute(
                "DELETE FROM prediction_cache AS c WHERE c.image_id = ? AND NOT (c.model = ? AND c.cache_key = ?)"
                " AND (substr(c.cache_key, 1, ?) = ? OR EXISTS (SELECT 1 FROM predictions p"
                " WHERE p.image_id = c.image_id AND p.model = c.model AND p.cache_key = c.cache_key"
                " AND p.category_id = ?))",
                (image_id, model, cache_key, len(prefix), prefix, cat),
            )
        marks = ",".join("?" * len(categories))
        deleted = conn.execute(
            "DELETE FROM predictions WHERE image_id = ? AND state = 'pending'"
            f" AND ((model = ? AND cache_key = ?) OR category_id IN ({marks})) RETURNING id",
            (image_id, model, cache_key, *categories),
        ).fetchall()
        return tuple(sorted(int(r[0]) for r in deleted))

    @staticmethod
    def _prediction_sequence(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'predictions'").fetchone()
        return int(row[0]) if row else 0

    def cached_predictions(self, image_id: int, model: str, cache_key: str) -> list[Prediction] | None:
        """The stored predictions of (image, model, cache key), or ``None`` when not cached.

        A cache entry counts only if the image file's bytes are those it was predicted from; a
        missing image file is never cached (so predicting it reports the missing file).
        """
        row = self._db.read_one(
            "SELECT content_hash FROM prediction_cache WHERE image_id = ? AND model = ? AND cache_key = ?",
            (image_id, model, cache_key),
        )
        if row is None:
            return None
        current = self._current_hash(image_id)
        if current is None or current[0] != row[0]:
            return None
        rows = self._db.read(
            f"SELECT {PRED_COLUMNS} FROM predictions WHERE image_id = ? AND model = ? AND cache_key = ? ORDER BY id",
            (image_id, model, cache_key),
        )
        return [prediction_from_row(r) for r in rows]

    def _predictions_by_id(self, ids: tuple[int, ...] | list[int]) -> list[Prediction]:
        if not ids:
            return []
        rows = self._db.read(
            f"SELECT {PRED_COLUMNS} FROM predictions WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id",
            list(ids),
        )
        return [prediction_from_row(r) for r in rows]

    def predictions(
        self, image_id: int | None = None, *, model: str | None = None, states: Any = None
    ) -> list[Prediction]:
        """Stored predictions, filtered by image, model and review states; in id order."""
        where, params = [], []
        if image_id is not None:
            where.append("image_id = ?")
            params.append(image_id)
        if model is not None:
            where.append("model = ?")
            params.append(model)
        if states is not None:
            values = [ReviewState(s).value for s in states]
            where.append(f"state IN ({','.join('?' * len(values))})")
            params.extend(values)
        sql = f"SELECT {PRED_COLUMNS} FROM predictions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [prediction_from_row(r) for r in self._db.read(sql + " ORDER BY id", params)]

    def prediction(self, prediction_id: int) -> Prediction:
        """One prediction; raises :class:`UnknownIdError` if there is none."""
        found = self._predictions_by_id([prediction_id])
        if not found:
            raise UnknownIdError(f"project {self.root.name} has no prediction with id {prediction_id}")
        return found[0]

    # ------------------------------------------------------------------------------------- decisions
    def decide(
        self,
        prediction_id: int,
        state: ReviewState | str,
        *,
        by: str = "",
        box: Any = None,
        mask: RLE | None = None,
        category_id: int | None = None,
    ) -> Prediction:
        """Record a review decision on one prediction (committed before returning).

        ``ACCEPTED`` creates the annotation (source ``"review"``, extra ``{"fusereview": {model,
        score, prediction_id}}``) linked by ``Prediction.annotation_id``; ``EDITED`` (or accepting
        with a new ``box``/``mask``/``category_id``) does so with the changed geometry or category,
        or changes the linked annotation; ``REJECTED`` and ``PENDING`` delete a linked annotation.
        """
        return self.decide_many([prediction_id], state, by=by, box=box, mask=mask, category_id=category_id)[0]

    def decide_many(
        self,
        prediction_ids: list[int],
        state: ReviewState | str,
        *,
        by: str = "",
        box: Any = None,
        mask: RLE | None = None,
        category_id: int | None = None,
    ) -> list[Prediction]:
        """:meth:`decide` for several predictions in one transaction (all or none)."""
        state = ReviewState(state)
        prediction_ids = list(dict.fromkeys(prediction_ids))  # twice in the list: decided once
        if category_id is not None:
            self._check_category(category_id)
        changed_annotations: list[int] = []
        at = now_utc()
        # read, plan and write in one IMMEDIATE transaction: another process cannot change these
        # predictions between our reading and our writing, and a plan that raises writes nothing
        with self._db.write() as conn:
            preds = {p.id: p for p in self._predictions_by_id(list(prediction_ids))}
            for pid in prediction_ids:
                if pid not in preds:
                    raise UnknownIdError(f"project {self.root.name} has no prediction with id {pid}")
            planned = []
            for pid in prediction_ids:
                pred = preds[pid]
                planned.append(
                    (pred, self._plan(pred, self.image(pred.image_id), state, box, mask, category_id))
                )
            for pred, (new_state, action, geometry, cat) in planned:
                ann_id = pred.annotation_id
                if action == "create":
                    extra = {
                        "fusereview": {"model": pred.model, "score": pred.score, "prediction_id": pred.id}
                    }
                    ann_id = self._insert_annotation(conn, pred.image_id, cat, geometry, "review", extra)
                    changed_annotations.append(ann_id)
                elif action == "update":
                    bbox, seg, area = geometry
                    conn.execute(
                        "UPDATE annotations SET bbox = ?, segmentation = ?, area = ?, category_id = ? WHERE id = ?",
                        (dumps(list(bbox)), dumps(seg), area, cat, ann_id),
                    )
                    changed_annotations.append(int(ann_id))  # type: ignore[arg-type]
                elif action == "delete":
                    conn.execute("UPDATE annotations SET deleted = 1 WHERE id = ?", (ann_id,))
                    changed_annotations.append(int(ann_id))  # type: ignore[arg-type]
                    ann_id = None
                conn.execute(
                    "UPDATE predictions SET state = ?, decided_by = ?, decided_at = ?, annotation_id = ? WHERE id = ?",
                    (new_state.value, by, at, ann_id, pred.id),
                )
                conn.execute(
                    "INSERT INTO decisions (prediction_id, state, decided_by, decided_at) VALUES (?, ?, ?, ?)",
                    (pred.id, new_state.value, by, at),
                )
        if prediction_ids:
            self.events.emit(Event("decided", tuple(prediction_ids)))
        if changed_annotations:
            self.events.emit(Event("annotation_changed", tuple(changed_annotations)))
        found = {p.id: p for p in self._predictions_by_id(list(prediction_ids))}
        return [found[pid] for pid in prediction_ids]

    def _plan(
        self,
        pred: Prediction,
        image: ImageRecord,
        state: ReviewState,
        box: Any,
        mask: RLE | None,
        category_id: int | None,
    ) -> tuple[ReviewState, str, Any, int]:
        """What a decision does: ``(new state, "create"|"update"|"delete"|"none", geometry, category)``."""
        edits = box is not None or mask is not None or category_id is not None
        linked = None
        if pred.annotation_id is not None:
            row = self._db.read_one(
                f"SELECT {ANN_COLUMNS} FROM annotations WHERE id = ? AND deleted = 0", (pred.annotation_id,)
            )
            linked = annotation_from_row(row) if row else None
        if state in (ReviewState.PENDING, ReviewState.REJECTED):
            if edits:
                raise ValueError(f"a {state.value} decision takes no box, mask or category")
            return state, "delete" if linked else "none", None, pred.category_id
        if mask is not None and list(mask.get("size", [])) != [image.height, image.width]:
            raise ProjectError(
                f"{image.file_name}: edited mask size {mask.get('size')} is not [{image.height}, {image.width}]"
            )
        new_state = ReviewState.EDITED if edits or state == ReviewState.EDITED else state
        if linked is not None and pred.state == ReviewState.EDITED:
            new_state = ReviewState.EDITED  # accepting an edited prediction keeps its edits
        if linked is not None and not edits:
            return new_state, "none", None, linked.category_id
        cat = category_id if category_id is not None else (linked.category_id if linked else pred.category_id)
        if mask is not None:
            geometry = geometry_from_mask(mask, box)
        elif linked is not None:
            bbox = xyxy_to_xywh(box) if box is not None else linked.bbox
            box_only = linked.segmentation == box_polygon(linked.bbox)
            seg = box_polygon(bbox) if box_only else linked.segmentation
            area = bbox[2] * bbox[3] if box_only else linked.area
            geometry = (bbox, seg, area)
        elif pred.mask is not None:
            geometry = geometry_from_mask(pred.mask, box)
        else:
            bbox = xyxy_to_xywh(box if box is not None else pred.box)
            geometry = (bbox, box_polygon(bbox), bbox[2] * bbox[3])
        return new_state, "update" if linked is not None else "create", geometry, cat
