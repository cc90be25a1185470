"""Small file helpers shared by every layer: writes that a crash cannot leave half done."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(data: Any, out: str | os.PathLike[str], *, indent: int | None = None) -> None:
    """Write JSON through a temporary file in the same folder, fsync, rename over ``out``.

    A reader sees the old file or the new one, never a half-written one; on any error the
    temporary file is removed and ``out`` is unchanged. (COCO files go through
    :func:`fusereview.core.coco.write_json_atomic`, which also validates and keeps a backup.)
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
