"""One error boundary per command: every failure ends as one line on stderr and an exit code.

- :class:`~fusereview.core.errors.FusereviewError` (bad input, a busy project, a model that will not
  load): its one-line description (file, field, message, hint); exit 1.
- ``OSError`` (disk full, permission denied, read-only file system, a missing file): one line
  naming the path and what the system said; exit 1.
- Anything else is a bug: one line naming the exception and the log file that holds the full
  traceback (under ``$FUSEREVIEW_LOG_DIR``, else ``$XDG_STATE_HOME/fusereview/log``, else
  ``~/.local/state/fusereview/log``); exit 70. Nothing is swallowed: the exit code is never 0 and
  the traceback is kept, only not dumped on the terminal (``FUSEREVIEW_TRACEBACK=1`` prints it too).

Stdlib only: the CLI imports this before knowing which command runs.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from fusereview.core.errors import FusereviewError, one_line

#: Exit code of a failure that is a bug in fusereview (sysexits' EX_SOFTWARE).
EXIT_INTERNAL = 70

_OS_WORDS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "not a folder",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
}


def log_dir() -> Path:
    """Where tracebacks of internal errors are written (``FUSEREVIEW_LOG_DIR`` wins, then XDG)."""
    explicit = os.environ.get("FUSEREVIEW_LOG_DIR")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "fusereview" / "log"


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: what happened (in words), and to which path."""
    if isinstance(exc, FusereviewError):
        return exc.describe()
    words = _OS_WORDS.get(exc.errno or -1) or exc.strerror or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths)
    detail = "" if exc.strerror or not str(exc) else f" ({exc})"
    return one_line(f"{words}: {where}{detail}" if where else f"{words}{detail or f' ({exc})'}")


def _sqlite_environment_error(exc: sqlite3.Error) -> str | None:
    """The one line for SQLite errors caused by the machine, not by a bug (else ``None``)."""
    text = str(exc).lower()
    if "disk is full" in text or "disk full" in text:
        return f"disk full: the project database could not be written ({exc}); nothing was changed"
    if "readonly database" in text or "read-only" in text:
        return f"the project database is read-only ({exc}); nothing was changed"
    if "disk i/o error" in text:
        return f"the disk failed while writing the project database ({exc})"
    return None


def write_traceback_log(command: str, exc: BaseException) -> Path | None:
    """Write ``exc``'s traceback to a fresh file under :func:`log_dir`; its path, or None if impossible."""
    folder = log_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{command or 'fusereview'}-{stamp}-{os.getpid()}.log"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        path.write_text(f"fusereview {command} {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
    except OSError:
        return None
    return path


def run_command(command: str, fn: Callable[[], int | None], *, stderr: object = None) -> int:
    """Run one command's body; turn whatever it raises into one line on stderr and an exit code.

    Parameters
    ----------
    command:
        The command name, printed first (``fusereview validate: ...``).
    fn:
        The command's body; its return value is the exit code (``None`` = 0).
    stderr:
        Where the line goes (default ``sys.stderr``).

    Returns
    -------
    int
        The command's own code, 1 for bad input or the environment, 130 for Ctrl+C, 70 for a bug.
    """
    err = stderr if stderr is not None else sys.stderr
    name = f"fusereview {command}" if command else "fusereview"

    def say(line: str) -> None:
        print(f"{name}: {one_line(line)}", file=err)  # type: ignore[arg-type]

    try:
        return int(fn() or 0)
    except FusereviewError as exc:
        say(exc.describe())
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=err)  # type: ignore[arg-type]
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error. Point stdout at devnull so that
        # Python's own flush at exit does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        say(describe_os_error(exc))
        return 1
    except sqlite3.Error as exc:
        line = _sqlite_environment_error(exc)
        if line is not None:
            say(line)
            return 1
        return _internal(exc, command, say)
    except Exception as exc:  # the boundary: a bug, reported as one line plus its logged traceback
        return _internal(exc, command, say)


def _internal(exc: BaseException, command: str, say: Callable[[str], None]) -> int:
    log = write_traceback_log(command, exc)
    where = f"the traceback is in {log}" if log else f"no log could be written under {log_dir()}"
    say(f"internal error ({type(exc).__name__}: {exc}); this is a bug in fusereview, {where}")
    if os.environ.get("FUSEREVIEW_TRACEBACK"):
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    return EXIT_INTERNAL
