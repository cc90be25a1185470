"""The project database: the working state of one review (images, prompts, annotations, predictions).

A project is a folder holding ``project.db`` (SQLite, WAL), ``runs/``, ``models/`` and ``exports/``.
It is created once by importing a COCO dataset and re-opened instantly afterwards (opening reads no
image and no json). COCO json is the interchange format in and out; the database is the truth in
between. Every write is one transaction, committed (and fsynced) before the call returns.

Ids
    Images and annotations have project ids (unique in the project; these are what every method
    takes and returns) and keep the input's COCO ids for export. They differ because a Roboflow
    export numbers the images and annotations of each split from 0. New annotations get the
    split's largest COCO annotation id + 1.

Content hash
    ``ImageRecord.content_hash`` is a BLAKE2b hash of the image file's bytes, computed lazily: the
    first time predictions are stored for the image (the prediction cache is keyed by it), not at
    import. Import must stay fast for 10,000 images, and an imported dataset may not have its image
    files at hand yet. Until then it is ``""``. A file whose size or mtime changed is re-hashed.

Geometry of created annotations (ADR 0020, :mod:`fusereview.core.instances`)
    A prediction is stored as its *instance* (mask cut to its box, fragments removed, or box
    only), and accepting it saves exactly that: ``area`` is the mask's pixel count and ``bbox``
    its tight box; the segmentation holds the very same pixels (polygons when they do, else the
    RLE, with ``iscrowd`` 0: iscrowd 1 would make the COCO evaluator ignore it). A box-only
    instance becomes ``segmentation: []`` with area w·h. A prediction that matches an existing
    annotation (:mod:`fusereview.core.matching`) records agreement instead of a second label.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from fusereview.core.errors import disk_full
from fusereview.core.events import Event, EventHub
from fusereview.core.file_checks import UnreadableFileError, check_regular_file
from fusereview.core.project_annotations import AnnotationsMixin
from fusereview.core.project_decisions import DecisionsMixin
from fusereview.core.project_export import (
    ROBOFLOW_JSON,
    coco_text,
    fsync_dir,
    write_text_atomic,
    write_texts_atomic,
)
from fusereview.core.project_import import insert_dataset
from fusereview.core.project_label_checks import LabelChecksMixin
from fusereview.core.project_predictions import PredictionsMixin
from fusereview.core.project_records import dumps
from fusereview.core.project_schema import (
    DB_NAME,
    DEFAULT_BUSY_TIMEOUT,
    SCHEMA_VERSION,
    Database,
    ProjectError,
    UnknownIdError,
    busy_error,
    create_schema,
    ensure_tables,
    is_locked_error,
    is_read_only_error,
    now_utc,
)
from fusereview.core.records import (
    Category,
    ImageRecord,
    ReviewState,
)

log = logging.getLogger(__name__)

__all__ = ["DB_NAME", "Project", "ProjectError", "UnknownIdError", "default_project_dir"]

_PROJECT_FOLDERS = ("runs", "models", "exports")
_RUN_FIELDS = ("status", "best_metric", "best_model_path", "config")

log = logging.getLogger(__name__)


def default_project_dir(dataset_path: str | Path) -> Path:
    """Where a dataset's project lives unless the user says: ``<parent>/<name>.fusereview``."""
    path = Path(dataset_path).resolve()
    name = path.stem if path.is_file() else path.name
    return path.parent / f"{name}.fusereview"


class Project(AnnotationsMixin, PredictionsMixin, DecisionsMixin, LabelChecksMixin):
    """One project: its folder, its database connection and its change events.

    Use :meth:`create`, :meth:`open` or :meth:`open_or_import`, not the constructor.

    Attributes
    ----------
    root:
        The project folder.
    db_path:
        ``root / "project.db"``.
    dataset_root:
        The imported dataset's root folder (image paths are resolved under it).
    events:
        Subscribers are told of every committed change (see :mod:`fusereview.core.events`).
    """

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.db_path = db.path
        self._db = db
        self.events = EventHub()
        meta = dict(db.read("SELECT key, value FROM meta"))
        self.dataset_root = Path(meta["dataset_root"])
        self._dataset_source = meta.get("dataset_source", "")
        self._split_dirs = dict(db.read("SELECT name, image_dir FROM splits"))
        self._split_json = dict(db.read("SELECT name, json_path FROM splits"))
        self._data_version = self._read_data_version()

    @property
    def read_only(self) -> bool:
        """Whether the project was opened for viewing only (its folder is on read-only media)."""
        return self._db.read_only

    @property
    def db(self) -> Database:
        """The database (for the core's own read queries, e.g. the review queue; writes go through methods)."""
        return self._db

    # ----------------------------------------------------------------------------------- lifecycle
    @classmethod
    def create(
        cls,
        project_dir: str | Path,
        dataset: Any,
        *,
        source: str | Path | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Project:
        """Create a project in ``project_dir`` by importing ``dataset``.

        The database is built under a temporary name and moved into place only when complete, so
        a failed import leaves no half project behind.

        Parameters
        ----------
        project_dir:
            The project folder (created if missing).
        dataset:
            A loaded :class:`fusereview.core.coco.Dataset`.
        source:
            The path the user imported (remembered so that :meth:`open_or_import` can tell whose
            project this is); default ``dataset.root``.
        busy_timeout:
            Seconds a write waits for another process's lock before :class:`ProjectBusyError`.

        Raises
        ------
        ProjectError
            A project already exists there.
        DatasetError
            The dataset has malformed fields (every one is listed).
        """
        root = Path(project_dir).resolve()
        final = root / DB_NAME
        if final.exists():
            raise ProjectError(
                f"{root}: a project already exists here; open it, or choose another --project folder",
                file=str(root),
            )
        made_root = not root.exists()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(
                f"{root}: cannot create the project folder ({exc.strerror or exc})", file=str(root)
            ) from None
        _check_room_for_import(root, dataset, made_root)
        tmp = root / f".{DB_NAME}.importing-{os.getpid()}"
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        dataset_root = Path(dataset.root).resolve()
        db = Database(tmp, str(root), busy_timeout, bulk=True)
        done = False
        try:
            with db.write() as conn:
                create_schema(conn)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("dataset_root", str(dataset_root)),
                        ("dataset_source", str(Path(source or dataset.root).resolve())),
                        ("layout", str(getattr(dataset, "layout", ""))),
                        ("created_at", now_utc()),
                    ],
                )
                insert_dataset(conn, dataset, dataset_root)
            # from now on the file is a normal project: WAL mode is stored in the file itself
            db.conn.execute("PRAGMA journal_mode=WAL")
            db.close()
            with open(tmp, "rb+") as fh:  # bulk mode skipped every fsync: one for the whole file
                os.fsync(fh.fileno())
            try:
                # link, not rename: fails instead of clobbering a project another process just made
                os.link(tmp, final)
            except FileExistsError:
                raise ProjectError(
                    f"{root}: a project was created here meanwhile; open it instead", file=str(root)
                ) from None
            except OSError:
                if final.exists():
                    raise ProjectError(
                        f"{root}: a project was created here meanwhile; open it instead", file=str(root)
                    ) from None
                os.replace(tmp, final)
            fsync_dir(root)
            done = True
        finally:
            db.close()
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
            if not done and made_root:
                with contextlib.suppress(OSError):  # a failed import leaves no trace, not even the folder
                    root.rmdir()
        for folder in _PROJECT_FOLDERS:
            (root / folder).mkdir(exist_ok=True)
        return cls.open(root, busy_timeout=busy_timeout)

    @classmethod
    def open(cls, project_dir: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Project:
        """Open an existing project (instant: reads a few rows, never the dataset).

        Raises
        ------
        ProjectError
            No project there, a file that is not a fusereview project, or a newer schema.
        """
        root = Path(project_dir).resolve()
        db_path = root / DB_NAME
        if not db_path.is_file():
            raise ProjectError(
                f"{root}: no project here (no {DB_NAME}); create one with `fusereview import DATASET`",
                file=str(root),
            )
        try:
            try:
                db = Database(db_path, str(root), busy_timeout)
            except sqlite3.OperationalError as exc:
                if not is_read_only_error(exc):
                    raise
                # read-only media (a mounted backup, a CD, a share): open it for viewing
                db = Database(db_path, str(root), busy_timeout, read_only=True)
                log.warning("%s is read-only: the project is open for viewing only", root)
            row = db.read_one("SELECT value FROM meta WHERE key = 'schema_version'")
        except sqlite3.OperationalError as exc:
            if is_locked_error(exc):
                raise busy_error(str(root), busy_timeout) from exc
            raise ProjectError(
                f"{db_path}: not a fusereview project database ({exc})", file=str(db_path)
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise ProjectError(
                f"{db_path}: not a fusereview project database ({exc})", file=str(db_path)
            ) from exc
        version = int(row[0]) if row is not None and str(row[0]).isdigit() else None
        if version is None or version > SCHEMA_VERSION:
            db.close()
            found = row[0] if row else "none"
            raise ProjectError(
                f"{db_path}: schema version {found}, this fusereview reads version {SCHEMA_VERSION}",
                file=str(db_path),
            )
        if version < SCHEMA_VERSION:
            from fusereview.core.project_migrate import migrate
            from fusereview.core.project_predictions import rematch_images

            try:
                backup = migrate(db, version, rematch_images)
            except BaseException:
                db.close()
                raise
            log.info(
                "%s: upgraded from schema %s to %s (backup: %s)", db_path, version, SCHEMA_VERSION, backup
            )
        try:
            ensure_tables(db)  # a development schema-2 database may predate label_checks
        except BaseException:
            db.close()
            raise
        return cls(root, db)

    @classmethod
    def open_or_import(
        cls,
        path: str | Path,
        project_dir: str | Path | None = None,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Project:
        """Open the project at ``path``, or the project of the dataset at ``path`` (importing it once).

        Parameters
        ----------
        path:
            A project folder, or a dataset (Roboflow folder or one COCO json).
        project_dir:
            Where the dataset's project is (default :func:`default_project_dir`).
        """
        path = Path(path)
        if (path / DB_NAME).is_file():
            return cls.open(path, busy_timeout=busy_timeout)
        target = Path(project_dir) if project_dir is not None else default_project_dir(path)
        if (target / DB_NAME).is_file():
            project = cls.open(target, busy_timeout=busy_timeout)
            known = (
                {Path(project._dataset_source), project.dataset_root} if project._dataset_source else set()
            )
            if known and path.resolve() not in known:
                project.close()
                raise ProjectError(
                    f"{target}: this project was imported from {project._dataset_source}, not {path.resolve()}",
                    file=str(target),
                )
            return project
        from fusereview.core.coco import load_dataset

        return cls.create(target, load_dataset(path), source=path, busy_timeout=busy_timeout)

    def close(self) -> None:
        """Close the database connection (every change is already committed)."""
        self._db.close()

    def _read_data_version(self) -> int:
        row = self._db.read_one("PRAGMA data_version")
        return int(row[0]) if row else 0

    def poll_external_changes(self) -> bool:
        """Whether another process (a CLI ``predict``, a second window) committed since the last poll.

        Events only reach subscribers of this process; a view that must follow other processes
        polls this (a ``QTimer`` every second or so costs nothing) and re-reads when it is true.
        """
        current = self._read_data_version()
        changed, self._data_version = current != self._data_version, current
        return changed

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    # --------------------------------------------------------------------------- images, categories
    def splits(self) -> list[str]:
        """Split names in import order (``train``, ``valid``, ``test`` for a Roboflow export)."""
        return [r[0] for r in self._db.read("SELECT name FROM splits ORDER BY position")]

    def _image_record(self, row: tuple) -> ImageRecord:
        iid, fname, width, height, split, chash = row
        return ImageRecord(
            id=iid,
            file_name=fname,
            width=width,
            height=height,
            split=split,
            path=str(self.dataset_root / self._split_dirs.get(split, "") / fname),
            content_hash=chash,
        )

    def images(self, split: str | None = None) -> list[ImageRecord]:
        """Every image (of one split), in import order."""
        sql = "SELECT id, file_name, width, height, split, content_hash FROM images"
        rows = self._db.read(
            sql + (" WHERE split = ? ORDER BY id" if split else " ORDER BY id"), (split,) if split else ()
        )
        return [self._image_record(r) for r in rows]

    def image(self, image_id: int) -> ImageRecord:
        """One image; raises :class:`UnknownIdError` if the project has no such image."""
        row = self._db.read_one(
            "SELECT id, file_name, width, height, split, content_hash FROM images WHERE id = ?", (image_id,)
        )
        if row is None:
            raise UnknownIdError(f"project {self.root.name} has no image with id {image_id}")
        return self._image_record(row)

    def coco_image_id(self, image_id: int) -> int:
        """The image's id in its split's COCO json (what :meth:`to_coco_dict` writes)."""
        row = self._db.read_one("SELECT coco_id FROM images WHERE id = ?", (image_id,))
        if row is None:
            raise UnknownIdError(f"project {self.root.name} has no image with id {image_id}")
        return int(row[0])

    def image_path(self, image_id: int) -> Path:
        """The image file's path; never outside the dataset root.

        Raises
        ------
        DatasetError
            The stored ``file_name`` would lead outside the dataset root (``../`` or absolute).
        """
        # imported here: coco pulls in OpenCV, which opening or exporting a project does not need
        from fusereview.core.coco import CocoSplit, resolve_image_path

        record = self.image(image_id)
        split = CocoSplit(
            name=record.split,
            json_path=self.dataset_root / self._split_json.get(record.split, ""),
            image_dir=self.dataset_root / self._split_dirs.get(record.split, ""),
            data={},
            root=self.dataset_root,
        )
        return resolve_image_path(split, record.file_name)

    def _current_hash(self, image_id: int) -> tuple[str, str] | None:
        """``(content_hash, stat)`` of the image file now, or ``None`` if the file is missing."""
        path = self.image_path(image_id)
        try:
            # a FIFO or a link to /dev/zero would hang or exhaust memory in read_bytes below
            st = check_regular_file(path)
        except (FileNotFoundError, UnreadableFileError, ValueError):
            return None  # not cacheable; loading the image reports what is wrong with it
        stat = f"{st.st_size}:{st.st_mtime_ns}"
        row = self._db.read_one("SELECT content_hash, hash_stat FROM images WHERE id = ?", (image_id,))
        if row and row[0] and row[1] == stat:
            return row[0], stat  # unchanged since we hashed it: no need to read the bytes
        return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest(), stat

    def content_hash(self, image_id: int) -> str:
        """The hash of the image file's bytes (computed now if the file changed or was never hashed).

        Raises
        ------
        ProjectError
            The image file is missing, or not a regular file of sane size.
        """
        current = self._current_hash(image_id)
        if current is None:
            path = self.image_path(image_id)
            if not path.exists():
                raise ProjectError(f"{path}: image file not found", file=str(path))
            raise ProjectError(
                f"{path}: not a regular image file (a FIFO, a device, or over 1 GiB)", file=str(path)
            )
        return current[0]

    def categories(self) -> list[Category]:
        """The real categories (the Roboflow placeholder category is hidden, but kept on export)."""
        rows = self._db.read(
            "SELECT id, name, prompt, supercategory FROM categories WHERE placeholder = 0 ORDER BY position"
        )
        return [Category(id=i, name=n, prompt=p, supercategory=s) for i, n, p, s in rows]

    def _check_category(self, category_id: int) -> None:
        if (
            self._db.read_one("SELECT 1 FROM categories WHERE id = ? AND placeholder = 0", (category_id,))
            is None
        ):
            raise UnknownIdError(f"project {self.root.name} has no category with id {category_id}")

    def set_prompt(self, category_id: int, prompt: str) -> None:
        """Set the text SAM3 is prompted with for a category (empty: back to the category name)."""
        self._check_category(category_id)
        with self._db.write() as conn:
            conn.execute(
                "UPDATE categories SET prompt = CASE WHEN ? = '' THEN name ELSE ? END WHERE id = ?",
                (prompt.strip(), prompt.strip(), category_id),
            )
        self.events.emit(Event("prompt_changed", (category_id,)))

    # ------------------------------------------------------------------------------ runs and settings
    def add_run(self, run_dir: str | Path, config: dict) -> int:
        """Register a training run; returns its id.

        A run folder is one run: registering it again (a resumed run) returns the existing id,
        with ``config`` updated, instead of adding a second row.
        """
        at = now_utc()
        with self._db.write() as conn:
            row = conn.execute("SELECT id FROM runs WHERE run_dir = ?", (str(run_dir),)).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE runs SET config = ?, updated_at = ? WHERE id = ?", (dumps(config), at, row[0])
                )
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO runs (run_dir, config, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (str(run_dir), dumps(config), at, at),
            )
        return int(cur.lastrowid or 0)

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Update a run's ``status``, ``best_metric``, ``best_model_path`` or ``config``."""
        unknown = set(fields) - set(_RUN_FIELDS)
        if unknown:
            raise ValueError(f"update_run: unknown fields {sorted(unknown)}; allowed: {list(_RUN_FIELDS)}")
        if not fields:
            return
        values = [
            dumps(v) if k == "config" else (str(v) if k == "best_model_path" and v is not None else v)
            for k, v in fields.items()
        ]
        with self._db.write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)}, updated_at = ? WHERE id = ?",
                (*values, now_utc(), run_id),
            )
            if cur.rowcount == 0:
                raise UnknownIdError(f"project {self.root.name} has no run with id {run_id}")

    def runs(self) -> list[dict]:
        """Every run, oldest first, as dicts (``config`` decoded)."""
        rows = self._db.read(
            "SELECT id, run_dir, config, status, best_metric, best_model_path, created_at, updated_at FROM runs ORDER BY id"
        )
        keys = (
            "id",
            "run_dir",
            "config",
            "status",
            "best_metric",
            "best_model_path",
            "created_at",
            "updated_at",
        )
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for run in out:
            run["config"] = json.loads(run["config"])
        return out

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A project setting (any JSON value), or ``default``."""
        row = self._db.read_one("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        """Store a project setting (any JSON-serialisable value)."""
        with self._db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, dumps(value)))

    def active_model(self) -> dict | None:
        """``{"spec", "fingerprint", "metrics"}`` of the model the project predicts with, or ``None``."""
        return self.get_setting("active_model")

    def set_active_model(self, spec: str, fingerprint: str, metrics: dict) -> None:
        """Make a model the project's active one (e.g. after promoting a training run's best)."""
        self.set_setting("active_model", {"spec": str(spec), "fingerprint": fingerprint, "metrics": metrics})

    # -------------------------------------------------------------------------------------- COCO out
    def _export_plan(self, split: str | None) -> tuple[list[str], bool, dict[str, str] | None]:
        names = self.splits()
        if split is not None:
            if split not in names:
                raise ProjectError(f"project {self.root.name} has no split {split!r}; it has {names}")
            return [split], False, None
        if len(names) == 1:
            return names, False, None
        # several splits in one file: COCO ids collide across Roboflow splits, so project ids are
        # written, and file names get their split folder so they resolve from the dataset root
        return names, True, {n: d for n, d in self._split_dirs.items() if d and d != "."}

    def coco_text(self, split: str | None = None, *, only_reviewed: bool = False, ids: str = "coco") -> str:
        """The COCO json text of one split, or of every split merged (see :meth:`to_coco_dict`)."""
        if ids not in ("coco", "project"):
            raise ValueError(f"ids must be 'coco' or 'project', got {ids!r}")
        names, merged, prefixes = self._export_plan(split)
        with self._db.lock:
            return coco_text(
                self._db.conn,
                names,
                only_reviewed=only_reviewed,
                project_ids=merged or ids == "project",
                prefix_dirs=prefixes,
            )

    def to_coco_dict(
        self, split: str | None = None, *, only_reviewed: bool = False, ids: str = "coco"
    ) -> dict:
        """The project's annotations as a COCO dict (unknown input fields and the placeholder kept).

        Parameters
        ----------
        split:
            One split (its input's COCO ids kept), or ``None``: every split in one dict (with the
            project's ids, since COCO ids repeat across Roboflow splits, and file names prefixed
            with their split folder).
        only_reviewed:
            Only images with no pending prediction.
        ids:
            ``"coco"`` (the input's ids) or ``"project"`` (the ids this class uses, e.g. to match
            :meth:`predictions` in an evaluation).
        """
        return json.loads(self.coco_text(split, only_reviewed=only_reviewed, ids=ids))

    def export_coco(
        self, out: str | Path, *, split: str | None = None, only_reviewed: bool = False
    ) -> list[Path]:
        """Write COCO json atomically (validated with pycocotools before the rename).

        Every annotation the project created or whose geometry it changed must hold the
        invariants of :func:`fusereview.core.instances.check_annotation` (area > 0, bbox = the
        mask's tight box, area = its pixel count, box only: ``segmentation: []`` and w·h);
        otherwise nothing is written (:class:`ProjectError` lists them). Imported annotations
        that were never edited are exported as given (ADR 0002).

        ``out`` ending in ``.json`` is one file (one split, or all merged as in
        :meth:`to_coco_dict`); anything else is a folder that gets the Roboflow layout,
        ``<out>/<split>/_annotations.coco.json`` per split (no split is replaced unless all were
        written and validated). An existing file is kept as a backup.
        """
        out = Path(out)
        problems = self.invariant_problems(split)
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ProjectError(
                f"{self.root.name}: not exported, {len(problems)} annotation(s) break the geometry rule: "
                + "; ".join(problems[:5])
                + more
            )
        if out.suffix.lower() == ".json":
            return [write_text_atomic(self.coco_text(split, only_reviewed=only_reviewed), out)]
        names = [split] if split is not None else self.splits()
        # all splits validated before any is replaced: a failure leaves the whole folder as it was
        files = [(self.coco_text(n, only_reviewed=only_reviewed), out / n / ROBOFLOW_JSON) for n in names]
        return write_texts_atomic(files, inside=out)

    def invariant_problems(self, split: str | None = None) -> list[str]:
        """Annotations made or edited by the project that break the geometry rule, one line each."""
        from fusereview.core.instances import check_annotation

        sql = (
            "SELECT a.id, i.file_name, i.width, i.height, a.bbox, a.segmentation, a.area FROM annotations a"
            " JOIN images i ON i.id = a.image_id WHERE a.deleted = 0 AND (a.source = 'review'"
            " OR a.geometry_edited_at != '')"
        )
        params: list[Any] = []
        if split is not None:
            sql += " AND i.split = ?"
            params.append(split)
        out = []
        for aid, name, width, height, bbox, seg, area in self._db.read(sql, params):
            for problem in check_annotation(json.loads(bbox), json.loads(seg), area, height, width):
                out.append(f"{name}: annotation {aid}: {problem}")
        return out

    def counts(self) -> dict[str, int]:
        """How many images, annotations and predictions (by state) the project holds."""
        out = {
            "images": self._db.read_one("SELECT COUNT(*) FROM images")[0],  # type: ignore[index]
            "annotations": self._db.read_one("SELECT COUNT(*) FROM annotations WHERE deleted = 0")[0],  # type: ignore[index]
        }
        for state in ReviewState:
            out[state.value] = 0
        for state, n in self._db.read("SELECT state, COUNT(*) FROM predictions GROUP BY state"):
            out[state] = n
        return out


def _check_room_for_import(root: Path, dataset: Any, made_root: bool) -> None:
    """Refuse an import that cannot fit before writing anything (the database holds the json text)."""
    try:
        needed = sum(Path(s.json_path).stat().st_size for s in dataset.splits.values())
        free = shutil.disk_usage(root).free
    except (OSError, AttributeError):
        return  # cannot tell: SQLite's own "disk full" is still turned into a clear error
    if needed > free:
        if made_root:
            with contextlib.suppress(OSError):
                root.rmdir()  # a failed import leaves no trace, not even the folder
        raise disk_full(root, needed)
