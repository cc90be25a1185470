"""Small file helpers shared by every layer: writes that a crash cannot leave half done."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any


def write_bytes_atomic(data: bytes, out: str | os.PathLike[str]) -> Path:
    """Write ``data`` through a temporary file in the same folder, fsync, rename over ``out``.

    A reader sees the old file or the new one, never a half-written one; on any error the
    temporary file is removed and ``out`` is unchanged. Missing parent folders are created.
    (COCO files go through :func:`fusereview.core.coco.write_json_atomic`, which also validates
    the result and keeps a backup.)
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write_text_atomic(text: str, out: str | os.PathLike[str]) -> Path:
    """:func:`write_bytes_atomic` of UTF-8 text."""
    return write_bytes_atomic(text.encode("utf-8"), out)


def write_json_atomic(data: Any, out: str | os.PathLike[str], *, indent: int | None = None) -> Path:
    """:func:`write_bytes_atomic` of JSON (``default=str`` for paths and the like).

    ``json.dumps`` then one write: ``json.dump`` streams through the pure-Python encoder, several
    times slower on large files.
    """
    return write_text_atomic(json.dumps(data, indent=indent, default=str), out)


def replace_dir(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename the folder ``new`` onto ``target``; an old ``target`` is moved aside first, removed after.

    If the final rename fails, the old ``target`` is put back: a checkpoint or export folder is
    either the old one or the new one, never missing.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
