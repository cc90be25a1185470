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
import io
import os
import shutil
import sqlite3
import time
from pathlib import Path

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
        raise ProjectError(f"{path}: the exported COCO json does not load in pycocotools: {exc}") from exc


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
    files: list[tuple[str, Path]], *, validate_coco: bool = True, backup: bool = True
) -> list[Path]:
    """Write several files so that none is replaced unless every one was written and validated.

    Every file goes to a temporary file beside its target and is fsynced and (``validate_coco``)
    loaded with pycocotools; only then are existing targets backed up (``<name>.bak-<timestamp>``)
    and the temporary files renamed over them. A failure before the renames changes nothing.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for text, out in files:
            out = Path(out)
            if out.is_dir():
                raise ProjectError(f"{out}: is a folder, expected a .json file name")
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = make_temp_file(out.parent, prefix=f".{out.name}.")
            except OSError as exc:
                raise ProjectError(f"{out}: cannot write there ({exc.strerror or exc})") from None
            staged.append((Path(tmp_name), out))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            if validate_coco:
                validate_with_pycocotools(Path(tmp_name))
        for tmp, out in staged:
            if backup and out.exists():
                shutil.copy2(out, backup_path(out))
            os.replace(tmp, out)
            fsync_dir(out.parent)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return [out for _, out in staged]
