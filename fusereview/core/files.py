"""Small file helpers shared by every layer: writes that a crash cannot leave half done.

Temporary files and folders are created here with the modes of ``open()`` and ``mkdir()``
(``0o666`` / ``0o777`` less the user's umask), not :mod:`tempfile`'s ``0o600`` / ``0o700``: the
temporary becomes the user's file by a rename, so it must already have the permissions the user's
umask asks for (a shared results folder stays readable by the group, as the user set it up).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any

# Enough random names to get past any left-over temporary of a crashed writer.
_TEMP_ATTEMPTS = 100


def _temp_name(folder: Path, prefix: str, suffix: str) -> Path:
    return folder / f"{prefix}{secrets.token_hex(6)}{suffix}"


def make_temp_file(
    folder: str | os.PathLike[str], prefix: str = ".", suffix: str = ".tmp"
) -> tuple[int, Path]:
    """Create a new, empty file in ``folder`` (mode ``0o666`` less the umask); returns ``(fd, path)``.

    Like :func:`tempfile.mkstemp` (exclusive creation, a random name), except for the mode.
    """
    folder = Path(folder)
    for _ in range(_TEMP_ATTEMPTS):
        path = _temp_name(folder, prefix, suffix)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return fd, path
    raise FileExistsError(f"{folder}: no free temporary file name after {_TEMP_ATTEMPTS} tries")


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux ``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere the only way to read it is to set it; put back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike[str]) -> None:
    """Give a file another library created (safetensors writes ``0o600``) the umask's mode."""
    mode = (0o777 if Path(path).is_dir() else 0o666) & ~current_umask()
    os.chmod(path, mode)


def make_temp_dir(folder: str | os.PathLike[str], prefix: str = ".", suffix: str = ".tmp") -> Path:
    """Create a new, empty folder in ``folder`` (mode ``0o777`` less the umask) and return it.

    Like :func:`tempfile.mkdtemp`, except for the mode: the folder is renamed into place as the
    user's export or checkpoint folder.
    """
    folder = Path(folder)
    for _ in range(_TEMP_ATTEMPTS):
        path = _temp_name(folder, prefix, suffix)
        try:
            path.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{folder}: no free temporary folder name after {_TEMP_ATTEMPTS} tries")


def write_bytes_atomic(data: bytes, out: str | os.PathLike[str]) -> Path:
    """Write ``data`` through a temporary file in the same folder, fsync, rename over ``out``.

    A reader sees the old file or the new one, never a half-written one; on any error the
    temporary file is removed and ``out`` is unchanged. Missing parent folders are created. The
    file gets the user's umask (see the module notes).
    (COCO files go through :func:`fusereview.core.coco.write_json_atomic`, which also validates
    the result and keeps a backup.)
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp_file(out.parent, prefix=f".{out.name}.")
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
