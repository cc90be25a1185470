"""Bring a project made by an older fusereview up to the current schema, keeping a backup.

Schema 1 → 2 (the geometry rule of :mod:`fusereview.core.instances` and the matching of
:mod:`fusereview.core.matching`):

- new columns: ``predictions.geometry`` / ``match_*``, ``annotations.geometry_edited_at``,
  ``decisions.detail``; the queue index covers ``match_kind``;
- every *pending* prediction is turned into its instance (what accepting it now saves), and one
  that cannot be an instance (no area, no usable mask) is deleted: it could never be accepted;
- box-only review annotations, stored as their box's rectangle polygon, become ``segmentation: []``;
- pending predictions are matched to the annotations;
- the label-issue ledger ``label_checks`` is created (ADR 0022).

The whole upgrade is one transaction, after a consistent copy of the database (SQLite's backup
API) was written beside it as ``project.db.bak-v1-<time>``: the user's work is never changed in
place without a backup.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from fusereview.core.instances import InstanceError, detection_instance
from fusereview.core.project_records import box_polygon, dumps
from fusereview.core.project_schema import (
    LABEL_CHECKS_SCHEMA,
    SCHEMA_VERSION,
    Database,
    ProjectError,
    execute_script,
    has_table,
)

_V2_COLUMNS = (
    ("predictions", "geometry", "TEXT"),
    ("predictions", "match_annotation_id", "INTEGER"),
    ("predictions", "match_iou", "REAL"),
    ("predictions", "match_kind", "TEXT NOT NULL DEFAULT ''"),
    ("annotations", "geometry_edited_at", "TEXT NOT NULL DEFAULT ''"),
    ("decisions", "detail", "TEXT NOT NULL DEFAULT ''"),
)


def backup_database(db: Database, version: int) -> Path:
    """A consistent copy of the database beside it (``project.db.bak-v<version>-<time>``)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db.path.with_name(f"{db.path.name}.bak-v{version}-{stamp}")
    dest = sqlite3.connect(str(target))
    try:
        with db.lock:
            db.conn.backup(dest)
    finally:
        dest.close()
    return target


def migrate(db: Database, version: int, rematch: Any) -> Path | None:
    """Upgrade an open database from ``version`` to :data:`SCHEMA_VERSION`; returns the backup.

    ``rematch(conn, image_ids)`` is the project's matcher (run inside the transaction).

    Raises
    ------
    ProjectError
        The version is unknown, or the database cannot be written (read-only media): it is
        left as it was.
    """
    if version == SCHEMA_VERSION:
        return None
    if version != 1:
        raise ProjectError(
            f"{db.path}: schema version {version}, this fusereview reads version {SCHEMA_VERSION}"
        )
    try:
        backup = backup_database(db, version)
    except (OSError, sqlite3.Error) as exc:
        raise ProjectError(
            f"{db.path}: made by an older fusereview (schema {version}); upgrading it needs write access "
            f"to its folder for a backup copy ({exc}); nothing was changed"
        ) from exc
    try:
        with db.write() as conn:
            _upgrade_1_to_2(conn, rematch)
    except sqlite3.Error as exc:
        raise ProjectError(
            f"{db.path}: could not upgrade it from schema {version} ({exc}); nothing was changed, "
            f"a backup is at {backup}"
        ) from exc
    return backup


def _upgrade_1_to_2(conn: sqlite3.Connection, rematch: Any) -> None:
    for table, column, decl in _V2_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    conn.execute("DROP INDEX IF EXISTS predictions_queue")
    conn.execute(
        "CREATE INDEX predictions_queue ON predictions (state, score, id, image_id, category_id, match_annotation_id)"
    )
    sizes = {i: (h, w) for i, h, w in conn.execute("SELECT id, height, width FROM images")}
    doomed = []
    rows = conn.execute(
        "SELECT id, image_id, x0, y0, x1, y1, mask FROM predictions WHERE state = 'pending'"
    ).fetchall()
    for pid, image_id, x0, y0, x1, y1, mask in rows:
        h, w = sizes[image_id]
        try:
            inst = detection_instance((x0, y0, x1, y1), json.loads(mask) if mask else None, h, w)
        except (InstanceError, ValueError):
            doomed.append(pid)
            continue
        geometry = {"note": inst.note, "model_box": [x0, y0, x1, y1], "removed": inst.removed_pixels}
        conn.execute(
            "UPDATE predictions SET x0 = ?, y0 = ?, x1 = ?, y1 = ?, mask = ?, geometry = ? WHERE id = ?",
            (*inst.box, dumps(inst.mask) if inst.mask is not None else None, dumps(geometry), pid),
        )
    conn.executemany("DELETE FROM predictions WHERE id = ?", [(pid,) for pid in doomed])
    for aid, bbox, seg in conn.execute(
        "SELECT id, bbox, segmentation FROM annotations WHERE source = 'review' AND deleted = 0"
    ).fetchall():
        box = tuple(json.loads(bbox))
        if json.loads(seg) == box_polygon(box):  # type: ignore[arg-type]
            _, _, bw, bh = box
            conn.execute("UPDATE annotations SET segmentation = '[]', area = ? WHERE id = ?", (bw * bh, aid))
    rematch(conn, list(sizes))
    if not has_table(conn, "label_checks"):
        execute_script(conn, LABEL_CHECKS_SCHEMA)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
