"""The per-file problem report and the small value tests every COCO check shares.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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


# No image side is this long (the pixel limit is 50 megapixels); a bigger "width" is garbage, and
# would overflow float and SQLite arithmetic further on.
_MAX_SIDE = 2**31


def as_int_size(v: Any) -> int | None:
    """A positive integer width/height; integral floats (``512.0``) are accepted."""
    if type(v) is int:
        return v if 0 < v < _MAX_SIDE else None
    if type(v) is float and v.is_integer() and 0 < v < _MAX_SIDE:
        return int(v)
    return None


def as_float(v: int | float) -> float:
    """``v`` as a float; an int beyond float's range (JSON allows 400 digits) becomes +-inf.

    ``float(10**400)`` raises OverflowError; as inf it is reported where it sits ("not a finite
    number") like any other non-finite value, instead of crashing the check.
    """
    if type(v) is float:
        return v
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def floats(values: Callable[[], Iterable[Any]], count: int = -1) -> np.ndarray:
    """A float64 array of ints/floats, huge ints as +-inf (see :func:`as_float`).

    ``values`` makes a fresh iterator: the fast C-level conversion is tried first and, in the rare
    file with a huge int, the values are converted again one by one.
    """
    try:
        return np.fromiter(values(), dtype=np.float64, count=count)
    except OverflowError:
        return np.fromiter(map(as_float, values()), dtype=np.float64, count=count)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds half of a UTF-16 pair (``"\\ud800"`` in JSON): no file system or database takes it."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
            self.problems.append(omitted_line(self.label, self.dropped))


def omitted_line(label: str, n: int) -> Problem:
    """The last line of a capped list: says (and counts, ``Problem.omitted``) what was left out."""
    return Problem(label, "", f"... and {n} more problems not listed", omitted=n)


def cap_problems(problems: list[Problem]) -> list[Problem]:
    """At most :data:`MAX_PROBLEMS_PER_FILE` listed per file, then one line counting the rest.

    Applied to the final list (json problems and image-file problems together), so that 100,000
    missing images print 1,001 lines, and the counts of already capped lists are kept.
    """
    kept: dict[str, int] = {}
    left_out: dict[str, int] = {}
    out: list[Problem] = []
    for p in problems:
        if p.omitted:
            left_out[p.file] = left_out.get(p.file, 0) + p.omitted
        elif kept.get(p.file, 0) < MAX_PROBLEMS_PER_FILE:
            kept[p.file] = kept.get(p.file, 0) + 1
            out.append(p)
        else:
            left_out[p.file] = left_out.get(p.file, 0) + 1
    out.extend(omitted_line(label, n) for label, n in left_out.items())
    return out


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def number_rows_ok(rows: list[Any]) -> np.ndarray:
    """Per row (a list), whether every value is a real int/float (not bool, str, None, list)."""
    return np.array([all(type(v) is int or type(v) is float for v in r) for r in rows], dtype=bool)
