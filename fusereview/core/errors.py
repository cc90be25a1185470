"""Errors the user can act on. The CLI prints their message as one line (no traceback) and exits 1."""

from __future__ import annotations

from dataclasses import dataclass


class FusereviewError(Exception):
    """Base class of every error caused by the user's input or environment, not by a bug."""


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
    """

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


class DatasetError(FusereviewError):
    """A dataset cannot be used; carries every problem found (not only the first)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        head = str(self.problems[0]) if self.problems else "invalid dataset"
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        super().__init__(head + more)


class ProjectBusyError(FusereviewError):
    """Another process holds the project's write lock for longer than we may wait."""


class ModelLoadError(FusereviewError):
    """A checkpoint could not be loaded completely; the model must not be used."""
