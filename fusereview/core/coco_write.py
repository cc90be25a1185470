"""Writing COCO json so that a crash can never leave a half-written or invalid file.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

from fusereview.core.errors import FusereviewError, disk_full
from fusereview.core.files import make_temp_file


class CocoWriteError(FusereviewError):
    """A COCO file could not be written (or would not load back); the target is left untouched."""


def write_json_atomic(
    data: dict[str, Any], out: str | os.PathLike[str], *, validate_coco: bool = True, backup: bool = True
) -> Path:
    """Write a json file so that a crash can never leave a half-written or invalid file.

    The data go to a temporary file in the same folder, are flushed to disk (fsync), optionally
    loaded back with ``pycocotools.COCO``, and only then renamed over ``out`` (atomic on one
    file system). An existing ``out`` is first kept as ``out.bak-YYYYmmdd-HHMMSS``.

    Parameters
    ----------
    data:
        JSON-serialisable dict (NaN and Infinity are refused: they are not JSON).
    out:
        The target file; its folder must exist.
    validate_coco:
        Load the temporary file with pycocotools before the rename.
    backup:
        Keep the previous ``out`` (if any) as a timestamped backup beside it.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    CocoWriteError
        When the data cannot be serialised, the folder is not writable, or pycocotools cannot load
        the result. ``out`` is then unchanged and no temporary file is left behind.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise CocoWriteError(f"{out}: folder {out.parent} does not exist", file=str(out))
    try:
        # created with the user's umask (core.files), as every other file the project writes
        fd, tmp_name = make_temp_file(out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise CocoWriteError(
            f"{out}: cannot write in {out.parent}: {exc.strerror or exc}", file=str(out)
        ) from None
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
        except (TypeError, ValueError) as exc:
            raise CocoWriteError(f"{out}: data cannot be written as JSON: {exc}", file=str(out)) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(out.parent, tmp.stat().st_size + (1 << 20)) from None
            raise CocoWriteError(f"{out}: write failed: {exc.strerror or exc}", file=str(out)) from None
        # a replaced file keeps its own mode (a new one has the umask's)
        if out.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(out.stat().st_mode))
        if validate_coco:
            _validate_with_pycocotools(tmp, out)
        if backup and out.exists():
            _backup(out)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(out.parent)
    return out


def _validate_with_pycocotools(tmp: Path, out: Path) -> None:
    from pycocotools.coco import COCO

    try:
        # COCO() prints progress to stdout; a CLI that pipes json must not get it.
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(tmp))
        if not isinstance(coco.dataset.get("images"), list) or not isinstance(
            coco.dataset.get("categories"), list
        ):
            raise ValueError("'images' and 'categories' lists are required")
    except Exception as exc:  # pycocotools raises assorted errors (KeyError, AssertionError, ...)
        raise CocoWriteError(
            f"{out}: the written file does not load as COCO ({type(exc).__name__}: {exc})", file=str(out)
        ) from None


def _backup(out: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    bak = out.with_name(f"{out.name}.bak-{stamp}")
    k = 1
    while bak.exists():
        bak = out.with_name(f"{out.name}.bak-{stamp}-{k}")
        k += 1
    try:
        # A hard link keeps `out` in place until the rename: no moment without a file.
        os.link(out, bak)
    except OSError:
        try:
            shutil.copy2(out, bak)
        except OSError as exc:
            bak.unlink(missing_ok=True)  # a 0-byte backup is worse than none; out is untouched
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(out.parent, out.stat().st_size) from None
            raise CocoWriteError(
                f"{out}: cannot keep a backup: {exc.strerror or exc}", file=str(out)
            ) from None
    return bak


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); not possible on Windows, where it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
