"""fusereview.qt: the review GUI (PySide6).

Importing this package works around a reference-counting bug of PySide6 6.12.0 on Python < 3.12:
every ``Signal.emit`` from Python drops one reference to ``True`` it never took, and Python slots
called from C++ signals drop one to ``None``. After some thousands of emits the interpreter aborts
("Fatal Python error: bool_dealloc"), typically at exit or in the middle of a long review. The
workaround gives ``True``, ``False`` and ``None`` a huge extra reference count, which is what
Python 3.12+ does anyway (immortal objects). It is harmless where the bug is absent.
"""

from __future__ import annotations

import sys


def _pin_singletons() -> None:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return  # immortal objects since 3.12; other interpreters do not count references this way
    import ctypes

    for obj in (True, False, None):
        # ob_refcnt is the first field of every CPython object
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40


_pin_singletons()
