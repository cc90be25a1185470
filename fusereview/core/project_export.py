"""Write a project's annotations back out as COCO json, fast and atomically.

The json text is streamed from the JSON text the database stores (segmentation, bbox and unknown
fields are never decoded), which is what makes a 100,000-polygon export take a second or two.
The file is written to a temporary file in the target folder, fsynced, loaded back with
pycocotools, and only then renamed over the target; an existing target is first copied to
``<name>.bak-<timestamp>``. (``coco.write_json_atomic`` does the same for a dict; this module
writes ready-made text instead, because re-encoding 100,000 polygons would double the time.)
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import sqlite3
import time
from pathlib import Path

from fusereview.core.errors import disk_full
from fusereview.core.files import make_temp_file
from fusereview.core.project_records import dumps
from fusereview.core.project_schema import ProjectError

#: The json name of each split folder in a Roboflow export (as ``coco.ROBOFLOW_JSON``; repeated
#: here so that exporting does not import OpenCV through the COCO reader).
ROBOFLOW_JSON = "_annotations.coco.json"

# images with no pending prediction (what --only-reviewed keeps): the set of images with a
# pending prediction is built once (from the queue index), not probed once per annotation
_REVIEWED = " AND i.id NOT IN (SELECT image_id FROM predictions WHERE state = 'pending')"


def _number(value: int | float) -> str:
    # repr of an int/float is exactly what json writes for it (finite floats only: checked at import)
    return repr(value)


def coco_text(
    conn: sqlite3.Connection,
    splits: list[str],
    *,
    only_reviewed: bool = False,
    project_ids: bool = False,
    prefix_dirs: dict[str, str] | None = None,
) -> str:
    """The COCO json text of ``splits`` (one split, or several merged into one file).

    Parameters
    ----------
    conn:
        The project's connection (the caller holds its lock).
    splits:
        Split names, in output order; the first one's top-level keys (info, licenses) are used.
    only_reviewed:
        Keep only images with no pending prediction, and their annotations.
    project_ids:
        Write the project's own image and annotation ids (unique across splits) instead of the
        input's COCO ids (which a Roboflow export repeats in every split).
    prefix_dirs:
        Per split, a folder to put before each ``file_name`` (merged files: images of several
        split folders are referenced from the dataset root).
    """
    top_row = conn.execute("SELECT top FROM splits WHERE name = ?", (splits[0],)).fetchone()
    top_inner = top_row[0][1:-1] if top_row else ""
    categories = ",".join(r[0] for r in conn.execute("SELECT raw FROM categories ORDER BY position"))
    reviewed = _REVIEWED if only_reviewed else ""
    image_parts: list[str] = []
    ann_parts: list[str] = []
    # one split at a time, rows in id order = input order, the same on every export.
    # CROSS JOIN pins the loop order (annotations outside): SQLite then streams them in rowid
    # order instead of sorting 100,000 rows with their polygons in a temporary B-tree.
    image_sql = f"SELECT i.id, i.coco_id, i.file_name, i.width, i.height, i.extra FROM images i WHERE i.split = ?{reviewed} ORDER BY i.id"
    ann_sql = (
        "SELECT a.id, a.coco_id, i.id, i.coco_id, a.category_id, a.bbox, a.segmentation, a.area, a.iscrowd, a.extra"
        f" FROM annotations a CROSS JOIN images i ON i.id = a.image_id WHERE a.deleted = 0 AND i.split = ?{reviewed}"
        " ORDER BY a.id"
    )
    for split in splits:
        prefix = (prefix_dirs or {}).get(split)
        for pid, cid, fname, width, height, extra in conn.execute(image_sql, (split,)):
            if prefix:
                fname = f"{prefix}/{fname}"
            rest = "," + extra[1:-1] if extra else ""
            image_parts.append(
                f'{{"id":{pid if project_ids else cid},"file_name":{dumps(fname)},'
                f'"width":{width},"height":{height}{rest}}}'
            )
        for aid, acid, iid, icid, cat, bbox, seg, area, iscrowd, extra in conn.execute(ann_sql, (split,)):
            rest = "," + extra[1:-1] if extra else ""
            ann_parts.append(
                f'{{"id":{aid if project_ids else acid},"image_id":{iid if project_ids else icid},'
                f'"category_id":{cat},"bbox":{bbox},"segmentation":{seg},"area":{_number(area)},'
                f'"iscrowd":{iscrowd}{rest}}}'
            )
    head = "{" + (top_inner + "," if top_inner else "")
    return (
        f'{head}"categories":[{categories}],"images":[{",".join(image_parts)}],'
        f'"annotations":[{",".join(ann_parts)}]}}'
    )


def validate_with_pycocotools(path: Path) -> None:
    """Load ``path`` with pycocotools (as every downstream tool will); raise if it cannot.

    Raises
    ------
    ProjectError
        Naming the file and pycocotools' complaint.
    """
    from pycocotools.coco import COCO

    try:
        # COCO() prints progress lines on stdout: keep them out of our CLI's output
        with contextlib.redirect_stdout(io.StringIO()):
            COCO(str(path))
    except Exception as exc:
        raise ProjectError(
            f"{path}: the exported COCO json does not load in pycocotools: {exc}", file=str(path)
        ) from exc


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new link) to disk."""
    # the rename itself must reach the disk, or a crash could bring the old file back
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # platforms without directory fds (Windows): the rename is as durable as it gets
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_path(out: Path) -> Path:
    """A free ``<out>.bak-<timestamp>`` name beside ``out``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = out.with_name(f"{out.name}.bak-{stamp}")
    n = 1
    while candidate.exists():
        candidate = out.with_name(f"{out.name}.bak-{stamp}-{n}")
        n += 1
    return candidate


def write_text_atomic(text: str, out: Path, *, validate_coco: bool = True, backup: bool = True) -> Path:
    """Write ``text`` to ``out`` atomically: temp file, fsync, validate, keep a backup, rename.

    Returns
    -------
    Path
        ``out``. If anything fails, ``out`` is untouched and the temporary file removed.
    """
    return write_texts_atomic([(text, Path(out))], validate_coco=validate_coco, backup=backup)[0]


def write_texts_atomic(
    files: list[tuple[str, Path]],
    *,
    validate_coco: bool = True,
    backup: bool = True,
    inside: Path | None = None,
) -> list[Path]:
    """Write several files so that none is replaced unless every one was written and validated.

    Every file goes to a temporary file beside its target and is fsynced and (``validate_coco``)
    loaded with pycocotools; only then are existing targets backed up (``<name>.bak-<timestamp>``)
    and the temporary files renamed over them. A failure before the renames changes nothing: the
    temporary files, partial backups and the folders this call created are removed again.

    Parameters
    ----------
    inside:
        The export target: every file must lie inside it (a split named ``..`` must not write
        beside it); checked before anything is written.

    Raises
    ------
    ProjectError
        A path outside ``inside``, a target that is a folder, a folder that cannot be created.
    DiskFullError
        Not enough free space (checked first, and on ``ENOSPC``): ``disk full: N MB needed at PATH``.
    """
    files = [(text, Path(out)) for text, out in files]
    if inside is not None:
        check_inside(inside, [out for _, out in files])
    for _, out in files:
        if out.is_dir():
            raise ProjectError(f"{out}: is a folder, expected a .json file name", file=str(out))
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    backups: list[tuple[Path, Path]] = []
    renamed = 0
    try:
        for _, out in files:
            created.extend(_make_parents(out.parent))
            remove_stale_temp_files(out)
        _check_free_space(files, backup)
        for text, out in files:
            try:
                # made with the user's umask (core.files), named after this process so that a later
                # export can tell a killed one's leftovers from a running one's
                fd, tmp_name = make_temp_file(out.parent, prefix=_temp_prefix(out), suffix=".tmp")
            except OSError as exc:
                raise _write_error(out, exc, len(text)) from None
            staged.append((Path(tmp_name), out))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise _write_error(out, exc, len(text.encode("utf-8"))) from None
            if validate_coco:
                validate_with_pycocotools(Path(tmp_name))
        # backups first, all of them: a backup that fails (disk full) must not leave some splits
        # replaced and others not
        if backup:
            for _, out in staged:
                if out.exists():
                    backups.append((out, _backup(out)))
        for tmp, out in staged:
            os.replace(tmp, out)
            renamed += 1
            fsync_dir(out.parent)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if renamed == 0:
            for _, bak in backups:  # nothing was replaced: the backups copy what is still there
                bak.unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise
    return [out for _, out in staged]


def check_inside(target: Path, paths: list[Path]) -> None:
    """Refuse any path that would not lie inside ``target`` (``..`` in a split name, a symlink)."""
    root = os.path.realpath(target)
    for path in paths:
        real = os.path.realpath(path)
        if os.path.commonpath([real, root]) != root:
            raise ProjectError(
                f"{path}: outside the export folder {target} (a split name with '..' or a symlink?); "
                "nothing was written",
                file=str(path),
            )


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, outermost first (to remove on failure)."""
    missing: list[Path] = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(
            f"{folder}: cannot create the folder ({exc.strerror or exc})", file=str(folder)
        ) from None
    return list(reversed(missing))


# Temporary files are named after the process that writes them, so that a later export can tell
# the leftovers of a killed one (its process is gone) from those of an export running right now.
def _temp_prefix(out: Path) -> str:
    return f".{out.name}.{os.getpid()}."


#: A temporary file older than this is a leftover even if its process id was reused since.
STALE_TEMP_SECONDS = 24 * 3600


def remove_stale_temp_files(out: Path) -> list[Path]:
    """Delete temporary files a killed export left beside ``out`` (``.<name>.<pid>.*.tmp``).

    A file is stale when the process that wrote it is no longer running, or it is a day old.
    Returns the files removed.
    """
    removed: list[Path] = []
    prefix = f".{out.name}."
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix) :].split(".", 1)[0]
        try:
            old = now - entry.lstat().st_mtime > STALE_TEMP_SECONDS
        except OSError:
            continue
        if old or not pid_text.isdigit() or not _process_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: alive
    return True


def _check_free_space(files: list[tuple[str, Path]], backup: bool) -> None:
    """Refuse up front when the new files (and copies of the old ones) cannot fit."""
    by_device: dict[Path, int] = {}
    for text, out in files:
        need = len(text.encode("utf-8")) if not text.isascii() else len(text)
        if backup and out.exists():
            need += out.stat().st_size  # a backup is a hard link when it can be, else a copy
        by_device[out.parent] = by_device.get(out.parent, 0) + need
    for folder, need in by_device.items():
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if need > free:
            raise disk_full(folder, need)


def _write_error(out: Path, exc: OSError, needed: int) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(out.parent, needed)
    return ProjectError(f"{out}: cannot write there ({exc.strerror or exc})")


def _backup(out: Path) -> Path:
    """Keep ``out`` as ``<out>.bak-<timestamp>``: a hard link when possible, else a copy.

    A copy that fails (disk full) is removed: a 0-byte backup is worse than none.
    """
    bak = backup_path(out)
    try:
        os.link(out, bak)  # no space needed, and no moment without the file
        return bak
    except OSError:
        pass
    try:
        shutil.copy2(out, bak)
    except OSError as exc:
        bak.unlink(missing_ok=True)
        raise _write_error(bak, exc, out.stat().st_size) from None
    return bak
