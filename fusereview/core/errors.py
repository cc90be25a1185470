"""Errors the user can act on. The CLI prints their message as one line (no traceback) and exits 1."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# A message is printed on one terminal line: a value echoed from a file (a 1 MB category name) must
# not turn it into a megabyte. Longer messages are cut here, with the number of characters left out.
MAX_MESSAGE_CHARS = 2000


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line (line breaks become ``" | "``), at most ``limit`` characters."""
    flat = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    if len(flat) > limit:
        flat = f"{flat[:limit]}... ({len(flat) - limit} more characters)"
    return flat


def short_repr(value: object, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters: what error messages echo from a file."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int beyond Python's digit limit; a deeply nested list
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


class FusereviewError(Exception):
    """Base class of every error caused by the user's input or environment, not by a bug.

    Parameters
    ----------
    message:
        What is wrong, in words the user understands (usually already naming the file).
    file:
        The file at fault, when there is one (the CLI names it if the message does not).
    field:
        The field inside that file (a JSON path such as ``annotations[3].bbox``, a tensor name).
    hint:
        What to do about it, when there is something to say.
    """

    def __init__(
        self,
        message: str = "",
        *,
        file: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = None if file is None else str(file)
        self.field = field
        self.hint = hint

    def describe(self) -> str:
        """The one line the CLI prints: ``file: field: message (hint)``, without repeating the file."""
        message = str(self)
        prefix = ""
        if self.file and self.file not in message:
            prefix = f"{self.file}: " + (
                f"{self.field}: " if self.field and self.field not in message else ""
            )
        hint = f" ({self.hint})" if self.hint and self.hint not in message else ""
        return one_line(prefix + message + hint)


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Attributes
    ----------
    file:
        The file the problem is in (as the user gave it, or relative to the dataset root).
    where:
        A JSON path into that file, e.g. ``annotations[12].bbox`` (empty when about the whole file).
    message:
        What is wrong, in words a labeler understands.
    omitted:
        For the last line of a capped list only: how many further problems it stands for (they
        were counted but not listed); 0 for every real problem.
    """

    file: str
    where: str
    message: str
    omitted: int = 0

    def __str__(self) -> str:
        text = f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"
        return one_line(text)


def count_problems(problems: Iterable[Problem]) -> int:
    """The true number of problems in a list whose per-file caps left some out (see ``Problem.omitted``)."""
    return sum(p.omitted if p.omitted else 1 for p in problems)


class DatasetError(FusereviewError):
    """A dataset cannot be used; carries every problem found (not only the first)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        head = str(self.problems[0]) if self.problems else "invalid dataset"
        total = count_problems(self.problems)
        more = f" (and {total - 1} more problems)" if total > 1 else ""
        first = self.problems[0] if self.problems else None
        super().__init__(
            head + more,
            file=first.file if first else None,
            field=(first.where or None) if first else None,
        )


class ProjectBusyError(FusereviewError):
    """Another process holds the project's write lock for longer than we may wait."""


class ModelLoadError(FusereviewError):
    """A checkpoint could not be loaded completely; the model must not be used."""


class DiskFullError(FusereviewError, OSError):
    """A write ran out of space; nothing was replaced (the message says how much was needed, where)."""


def disk_full(path: object, needed_bytes: int | None = None) -> DiskFullError:
    """The error for a write that found no space: ``disk full: N MB needed at PATH``."""
    need = "" if not needed_bytes else f"{max(1, round(needed_bytes / 1e6))} MB needed "
    return DiskFullError(
        f"disk full: {need}at {path}; nothing was replaced, free some space and try again", file=str(path)
    )
