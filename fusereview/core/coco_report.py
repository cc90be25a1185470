"""The per-file problem report and the small value tests every COCO check shares.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusereview.core.errors import Problem

# Stop listing problems of one file after this many: a broken 100,000-annotation file would
# otherwise print 100,000 lines. The last line says how many more there were.
MAX_PROBLEMS_PER_FILE = 1000

MISSING = object()

# Ids are stored in SQLite and numpy arrays: they must fit in a signed 64-bit integer.
ID_LIMIT = 2**63


def is_int(v: Any) -> bool:
    return type(v) is int and -ID_LIMIT <= v < ID_LIMIT


def as_int_size(v: Any) -> int | None:
    """A positive integer width/height; integral floats (``512.0``) are accepted."""
    if type(v) is int:
        return v if v > 0 else None
    if type(v) is float and v.is_integer() and v > 0:
        return int(v)
    return None


class Report:
    """Problems and quirks of one file, with the per-file cap on problems."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.problems: list[Problem] = []
        self.quirks: list[Problem] = []
        self.dropped = 0

    def problem(self, where: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.label, where, message))
        else:
            self.dropped += 1

    def quirk(self, where: str, message: str) -> None:
        self.quirks.append(Problem(self.label, where, message))

    def finish(self) -> None:
        if self.dropped:
            self.problems.append(Problem(self.label, "", f"... and {self.dropped} more problems not listed"))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def number_rows_ok(rows: list[Any]) -> np.ndarray:
    """Per row (a list), whether every value is a real int/float (not bool, str, None, list)."""
    return np.array([all(type(v) is int or type(v) is float for v in r) for r in rows], dtype=bool)
