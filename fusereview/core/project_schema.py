"""The project database's tables, its connection settings and its write transactions.

Design choices (the *why* of ``project.db``):

- One SQLite file in WAL mode. Readers never block the writer nor each other, so the GUI keeps
  reading while a CLI ``predict`` writes. SQLite's own lock serialises two writers; a writer
  that cannot get the lock within the busy timeout gets :class:`ProjectBusyError`.
- ``synchronous=FULL``: a committed transaction is on disk (WAL fsynced) before ``COMMIT``
  returns, so a decision survives a SIGKILL or a power cut. Decisions are tiny, the fsync is cheap.
- Every write is ``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front, so a busy
  project fails at the start of the change, never half-way through it.
- The input's JSON is kept as JSON text (segmentation, bbox, unknown fields): unknown fields
  survive a round trip and export streams stored text instead of re-encoding 100,000 polygons.
- A deleted annotation keeps its row (``deleted = 1``) so that undo restores it with the same
  ids, and a COCO id is never handed out twice.
- Image and annotation rows have their own ``id`` (unique in the project) and keep the input's id
  as ``coco_id``: a Roboflow export numbers every split from 0, so COCO ids collide across splits.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from fusereview.core.errors import DiskFullError, FusereviewError, ProjectBusyError

SCHEMA_VERSION = 2
DB_NAME = "project.db"
#: Seconds a writer waits for another process's write lock before giving up.
DEFAULT_BUSY_TIMEOUT = 10.0


class ProjectError(FusereviewError):
    """A project cannot be created, opened or changed as asked."""


class UnknownIdError(ProjectError, KeyError):
    """An image, annotation, prediction, category or run id that the project does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- one row per COCO json, top = every top-level key but images/annotations/categories (info, licenses, ...)
CREATE TABLE splits (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    json_path TEXT NOT NULL,
    image_dir TEXT NOT NULL,
    top TEXT NOT NULL,
    next_ann_coco_id INTEGER NOT NULL
);
-- raw = the category object exactly as the input had it (written back on export)
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    supercategory TEXT NOT NULL,
    prompt TEXT NOT NULL,
    placeholder INTEGER NOT NULL,
    position INTEGER NOT NULL,
    raw TEXT NOT NULL
);
-- extra = the input's image object minus id/file_name/width/height, as JSON text (NULL: none)
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    split TEXT NOT NULL REFERENCES splits(name),
    coco_id INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    extra TEXT,
    content_hash TEXT NOT NULL DEFAULT '',
    hash_stat TEXT NOT NULL DEFAULT '',
    UNIQUE (split, coco_id)
);
-- bbox/segmentation as JSON text, area untyped so an int stays an int, extra = unknown keys,
-- geometry_edited_at = when the project last changed the geometry ('' = as imported), such
-- annotations (and those review created) must hold the invariants of core.instances (export checks)
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    coco_id INTEGER NOT NULL,
    category_id INTEGER NOT NULL,
    bbox TEXT NOT NULL,
    segmentation TEXT NOT NULL,
    area NOT NULL,
    iscrowd INTEGER NOT NULL,
    source TEXT NOT NULL,
    extra TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    geometry_edited_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX annotations_image ON annotations (image_id);
-- box (xyxy pixels) and mask (COCO RLE as JSON text) are the *instance* (core.instances: what the
-- canvas shows and accepting saves), geometry = JSON {"note", "model_box", "removed"} of how the
-- model's output became it. match_* = the annotation a pending prediction matches (core.matching).
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    category_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    prompt TEXT NOT NULL,
    score REAL NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    mask TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at TEXT NOT NULL DEFAULT '',
    annotation_id INTEGER,
    geometry TEXT,
    match_annotation_id INTEGER,
    match_iou REAL,
    match_kind TEXT NOT NULL DEFAULT ''
);
-- the review queue: pending first, lowest score first, straight from the index (covering: the
-- queue's columns are all in it, so 100,000 items are read without touching the table)
CREATE INDEX predictions_queue ON predictions (state, score, id, image_id, category_id, match_annotation_id);
CREATE INDEX predictions_image ON predictions (image_id, model, cache_key);
CREATE INDEX predictions_annotation ON predictions (annotation_id);
-- an image was run through (model, cache_key) while its bytes hashed to content_hash
CREATE TABLE prediction_cache (
    image_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (image_id, model, cache_key)
);
-- every decision ever taken (who and when), the prediction row holds the latest
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    prediction_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    run_dir TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'created',
    best_metric REAL,
    best_model_path TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

#: The label-issue ledger (core.label_issues, ADR 0022): one row per fix or "label is right"
#: verdict. Kept apart so that the 1 -> 2 upgrade and :func:`ensure_tables` create the very same
#: table. No semicolon may appear in its comments (the statements are split on it).
LABEL_CHECKS_SCHEMA = """
-- kind = missing / spurious / misplaced / wrong_class, action = add / delete / geometry / class /
-- right, box = the disagreeing prediction's box (xyxy JSON, NULL: none). undone_at is set when an
-- undo took the fix back (a redo writes a new row). An active 'right' row on an annotation hides
-- its issues for good, one without an annotation (a missing label) hides predictions of its
-- category that overlap its box.
CREATE TABLE label_checks (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL,
    annotation_id INTEGER,
    prediction_id INTEGER,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    category_id INTEGER,
    box TEXT,
    score REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    undone_at TEXT NOT NULL DEFAULT '',
    undone_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX label_checks_annotation ON label_checks (annotation_id);
CREATE INDEX label_checks_image ON label_checks (image_id);
"""
SCHEMA += LABEL_CHECKS_SCHEMA


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string (what ``decided_at`` and run times hold)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(
    db_path: Path, busy_timeout: float, *, bulk: bool = False, read_only: bool = False
) -> sqlite3.Connection:
    """Open the database with the settings every connection must have.

    ``isolation_level=None`` leaves transactions to :class:`Database` (explicit ``BEGIN
    IMMEDIATE``); ``check_same_thread=False`` because the GUI's workers share the connection
    under :class:`Database`'s lock. ``bulk`` (import into a new file that is renamed into place
    only when complete) turns journal and fsync off: a crash there loses nothing but the
    temporary file, and the import writes 100,000 rows once instead of twice (WAL, then database).
    ``read_only`` (a project on read-only media) opens the file immutable: SQLite then needs neither
    the ``-wal`` nor the ``-shm`` file, which it could not create there.
    """
    if read_only:
        uri = f"{Path(db_path).absolute().as_uri()}?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        return conn
    conn = sqlite3.connect(str(db_path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    if bulk:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
    else:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def is_disk_full_error(exc: sqlite3.Error) -> bool:
    """Whether SQLite ran out of space (``SQLITE_FULL``)."""
    return "disk is full" in str(exc).lower() or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def is_read_only_error(exc: sqlite3.Error) -> bool:
    """Whether SQLite could not write because the file or its folder is read-only."""
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open database file" in text


def is_locked_error(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite gave up waiting for another connection's lock."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def busy_error(name: str, busy_timeout: float) -> ProjectBusyError:
    """The error a writer gets when another process holds the project's lock for too long."""
    return ProjectBusyError(
        f"project {name} is busy: another process (the GUI, or a `fusereview predict` or "
        f"`import`) has held its write lock for more than {busy_timeout:g} s; "
        "nothing was changed, try again when it has finished"
    )


class Database:
    """A connection plus the lock and transaction discipline of one open project."""

    def __init__(
        self, db_path: Path, name: str, busy_timeout: float, *, bulk: bool = False, read_only: bool = False
    ) -> None:
        self.path = db_path
        self.name = name
        self.busy_timeout = busy_timeout
        #: Opened for viewing only (read-only media): every write is refused with a clear message.
        self.read_only = read_only
        self.conn = connect(db_path, busy_timeout, bulk=bulk, read_only=read_only)
        # one connection shared by the GUI thread and its workers: serialise them here
        self.lock = threading.RLock()
        self._depth = 0

    def busy_error(self) -> ProjectBusyError:
        """The error a writer gets when another process holds the lock for too long."""
        return busy_error(self.name, self.busy_timeout)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Nested uses join the outer transaction (so a batch of decisions is one commit). A full disk
        is a :class:`~fusereview.core.errors.DiskFullError` (SQLite has rolled back: nothing
        changed); a read-only project is a :class:`ProjectError` before anything is tried.
        """
        if self.read_only:
            raise ProjectError(
                f"project {self.name} is on read-only media and was opened for viewing only; "
                "copy the project folder somewhere writable to change it"
            )
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_locked_error(exc):
                    raise self.busy_error() from exc
                raise
            self._depth = 1
            try:
                yield self.conn
            except sqlite3.Error as exc:
                self._rollback()
                if is_disk_full_error(exc):
                    raise self.disk_full_error() from exc
                raise
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    self._rollback()
                    if is_locked_error(exc):
                        raise self.busy_error() from exc
                    if is_disk_full_error(exc):
                        raise self.disk_full_error() from exc
                    raise
            finally:
                self._depth = 0

    def _rollback(self) -> None:
        """Roll back if a transaction is still open: SQLite ends it by itself on some errors (a full
        disk), and a failing ROLLBACK must not hide the error that caused it."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is unusable; the original error says why

    def disk_full_error(self) -> DiskFullError:
        """The error of a write that found the disk full (nothing was changed)."""
        folder = Path(self.path).parent
        try:
            free = f" ({shutil.disk_usage(folder).free / 1e6:.0f} MB free)"
        except OSError:
            free = ""
        return DiskFullError(
            f"disk full: the project database {self.path} could not grow{free}; nothing was changed, "
            "free some space and try again",
            file=str(self.path),
        )

    def read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Run one query and return every row (WAL: never waits for a writer)."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple | list = ()) -> tuple | None:
        """Run one query and return its first row, or ``None``."""
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            self.conn.close()


def execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction.

    Split by hand: ``executescript()`` would COMMIT the caller's open transaction (so no ``;``
    may appear in a script's comments).
    """
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table in an empty database (inside the caller's transaction)."""
    execute_script(conn, SCHEMA)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the database has a table of that name."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def ensure_tables(db: Database) -> None:
    """Add the tables a schema-2 database made before they existed lacks (``label_checks``).

    Schema 2 was not released when ``label_checks`` joined it, so a development database of
    schema 2 may lack it: it is created on open (an empty table changes no data, so this needs
    no backup). A read-only database is left as it is: reads treat the table as empty and a
    write says why it cannot be made.
    """
    with db.lock:
        if has_table(db.conn, "label_checks"):
            return
    try:
        with db.write() as conn:
            if not has_table(conn, "label_checks"):
                execute_script(conn, LABEL_CHECKS_SCHEMA)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc).lower():
            raise
