"""Predictions of a project: the per-image cache of model output, stored as instances, and their matches."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from fusereview.core.events import Event, EventHub
from fusereview.core.geometry import SegmentationError, check_rle
from fusereview.core.instances import InstanceError, detection_instance
from fusereview.core.matching import Candidate, annotation_candidate, match_image
from fusereview.core.project_records import PRED_COLUMNS, dumps, prediction_from_row
from fusereview.core.project_schema import Database, ProjectError, UnknownIdError, now_utc
from fusereview.core.records import Detection, ImageRecord, Prediction, ReviewState


def category_key_prefix(category_id: int) -> str:
    """The prefix that marks a prediction cache key as belonging to one category: ``c<id>-``.

    :func:`fusereview.models.base.cache_key` starts every key made with a ``category_id`` with it,
    so that :meth:`PredictionsMixin.store_predictions` can find the cache entries of a category
    (prompt and threshold are hashed, the category is not: two categories prompted with the same
    text must never share an entry).
    """
    return f"c{int(category_id)}-"


def _finite(values: Any) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def rematch_images(conn: sqlite3.Connection, image_ids: Any) -> tuple[int, ...]:
    """Match the undecided predictions of images to their annotations again (in ``conn``'s transaction).

    Pending and rejected predictions are matched (a rejected one may be accepted later);
    accepted and edited ones keep the match they were decided with. Returns the ids of the
    predictions whose match changed (for the ``matches_changed`` event).
    """
    changed: list[int] = []
    for image_id in sorted(set(image_ids)):
        size = conn.execute("SELECT height, width FROM images WHERE id = ?", (image_id,)).fetchone()
        if size is None:
            continue
        height, width = size
        rows = conn.execute(
            "SELECT id, category_id, x0, y0, x1, y1, mask, score, match_annotation_id, match_iou, match_kind"
            " FROM predictions WHERE image_id = ? AND state IN ('pending', 'rejected')",
            (image_id,),
        ).fetchall()
        if not rows:
            continue
        preds = [
            Candidate(r[0], r[1], (r[2], r[3], r[4], r[5]), json.loads(r[6]) if r[6] else None, r[7])
            for r in rows
        ]
        anns = [
            annotation_candidate(a, c, json.loads(b), json.loads(g), height, width)
            for a, c, b, g in conn.execute(
                "SELECT id, category_id, bbox, segmentation FROM annotations WHERE image_id = ? AND deleted = 0",
                (image_id,),
            )
        ]
        found = match_image(preds, anns) if anns else {}
        updates = []
        for r in rows:
            m = found.get(r[0])
            new = (m.annotation_id, round(m.iou, 4), m.kind) if m else (None, None, "")
            if (r[8], r[9], r[10] or "") != new:
                updates.append((*new, r[0]))
        conn.executemany(
            "UPDATE predictions SET match_annotation_id = ?, match_iou = ?, match_kind = ? WHERE id = ?",
            updates,
        )
        changed.extend(u[-1] for u in updates)
    return tuple(sorted(changed))


class PredictionsMixin:
    """The prediction methods of :class:`~fusereview.core.project.Project` (see there)."""

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
        skip_empty: bool = False,
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

        Each detection is stored as its *instance* (:func:`fusereview.core.instances.detection_instance`:
        mask cut to its box, fragments removed, box only when the mask is empty or disagrees
        with the box), which is what the canvas shows and accepting saves; then the image's
        pending predictions are matched to its annotations (:mod:`fusereview.core.matching`).

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
        skip_empty:
            Leave out detections that cannot be an instance (a box without area in the image and
            no usable mask) instead of refusing the set: a model's raw output may hold a few,
            clamped to the image edge. Everything else that is wrong is still refused.

        Raises
        ------
        ProjectError
            Nothing is stored when any detection is bad: a score that is not a number in [0, 1],
            a box that is not finite, inverted, outside the image or without area (and no usable
            mask), a malformed RLE or one of another size than the image, or a category that is
            unknown or not ``category_id``. The message names the image, the detection and the field.
        """
        image = self.image(image_id)
        if category_id is not None:
            self._check_category(category_id)
        rows = []
        for i, det in enumerate(detections):
            row = self._instance_row(image, i, det, category_id, skip_empty)
            if row is not None:
                rows.append((image_id, *row, model, cache_key))
        categories = sorted({category_id} if category_id is not None else {d.category_id for d in detections})
        current = self._current_hash(image_id)
        with self._db.write() as conn:
            removed = self._supersede(conn, image_id, model, cache_key, categories)
            # AUTOINCREMENT: the ids of replaced predictions are never handed out again (a view
            # holding an old id must not find another prediction under it)
            first = self._prediction_sequence(conn) + 1
            conn.executemany(
                "INSERT INTO predictions (image_id, category_id, prompt, score, x0, y0, x1, y1, mask, geometry,"
                " model, cache_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            rematched = self._rematch(conn, [image_id])
        ids = tuple(range(first, last + 1))
        if len(ids) != len(rows):  # cannot happen inside one IMMEDIATE transaction; never hide it
            raise ProjectError(f"project {self.root.name}: prediction ids not consecutive")
        if removed:
            self.events.emit(Event("predictions_removed", removed))
        if ids:
            self.events.emit(Event("predictions_added", ids))
        older = tuple(pid for pid in rematched if pid < first)
        if older:
            self.events.emit(Event("matches_changed", older))
        return self._predictions_by_id(ids)

    def _instance_row(
        self, image: ImageRecord, index: int, det: Detection, category_id: int | None, skip_empty: bool
    ) -> tuple[Any, ...] | None:
        """One detection checked and turned into its instance: the columns of its row."""
        where = f"{image.file_name}: detection {index}"
        score = det.score
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0.0 <= float(score) <= 1.0:
            raise ProjectError(f"{where}: score {score!r} is not a number in [0, 1]")  # NaN fails too
        try:
            self._check_category(det.category_id)
        except UnknownIdError as exc:
            raise ProjectError(f"{where}: category_id: {exc}") from exc
        if category_id is not None and det.category_id != category_id:
            raise ProjectError(
                f"{where}: category {det.category_id} in a prediction set stored for category {category_id}"
            )
        mask = det.mask
        if mask is not None:
            try:
                checked = check_rle(mask, image.height, image.width)
            except SegmentationError as exc:
                raise ProjectError(f"{where}: mask: {exc}") from exc
            mask = {"size": list(checked["size"]), "counts": checked["counts"].decode("ascii")}
        try:
            inst = detection_instance(det.box, mask, image.height, image.width)
        except InstanceError as exc:
            if skip_empty and _finite(det.box):
                return None
            raise ProjectError(f"{where}: box: {exc}") from exc
        geometry = {"note": inst.note, "model_box": list(inst.model_box), "removed": inst.removed_pixels}
        return (
            det.category_id,
            det.prompt,
            float(score),
            *inst.box,
            dumps(inst.mask) if inst.mask is not None else None,
            dumps(geometry),
        )

    # ---------------------------------------------------------------------------------- matching
    @staticmethod
    def _rematch(conn: sqlite3.Connection, image_ids: Any) -> tuple[int, ...]:
        """See :func:`rematch_images` (inside the caller's write transaction)."""
        return rematch_images(conn, image_ids)

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
