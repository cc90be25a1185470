"""Is this path a file we may read whole? Checked before any read (stdlib only, no OpenCV).

An "image" that is a FIFO blocks the first ``open()`` forever; a symlink to ``/dev/zero`` or a
20 GB file named ``.jpg`` is read until memory runs out. So the kind and size of a file are looked
at (one ``stat``, following symlinks) before it is opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fusereview.core.errors import FusereviewError

#: Largest file read whole as an image: a 50-megapixel 16-bit RGBA TIFF is 400 MB uncompressed,
#: and phones append a few MB of video to a photo; 1 GiB leaves room for both, and no more.
MAX_FILE_BYTES = 1 << 30

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFileError(FusereviewError):
    """A path is not a regular file of a size we read whole; ``reason`` says why (without the path)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}", file=str(path))


def check_regular_file(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> os.stat_result:
    """``os.stat(path)`` after checking that it is a regular file of at most ``max_bytes``.

    Raises
    ------
    FileNotFoundError
        When nothing is there (callers word that themselves).
    UnreadableFileError
        A folder, FIFO, device or socket (symlinks followed: a link to ``/dev/zero`` is a device),
        or a file larger than ``max_bytes``.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise UnreadableFileError(path, f"is {kind}, not an image file; skipped")
    if st.st_size > max_bytes:
        raise UnreadableFileError(
            path,
            f"file is {st.st_size / 2**20:.0f} MiB, more than any image we read "
            f"({max_bytes / 2**20:.0f} MiB); skipped",
        )
    return st
