"""Python's cyclic garbage collector runs in the GUI thread only.

Python collects cycles in whichever thread happens to allocate when a generation's threshold is
reached: often a worker (the training thread imports torch and allocates a lot). When the cycles
hold wrappers of Qt widgets (a closed project's panels, a lambda connected to a signal that
refers back to its widget), their C++ destructors then run in that worker thread while the GUI
thread paints: a segmentation fault (seen in the suite: ``__dynamic_cast`` under
``gc_collect_generations`` in a ``QThread``). So, while the application runs, automatic
collection is off and a timer in the GUI thread collects instead, generation by generation, as
often as the thresholds would have.
"""

from __future__ import annotations

import gc
from typing import Any

_guard: Any = None


class GuiThreadCollector:
    """Collect garbage from a GUI-thread timer (checked every ``interval_ms``) instead of anywhere."""

    def __init__(self, interval_ms: int = 500) -> None:
        from PySide6.QtCore import QTimer

        self.thresholds = gc.get_threshold()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start()

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds (GUI thread)."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Back to Python's own collection."""
        self.timer.stop()
        gc.enable()


def install(interval_ms: int = 500) -> GuiThreadCollector:
    """Install the collector once per process (a QApplication must exist); returns it."""
    global _guard
    if _guard is None:
        _guard = GuiThreadCollector(interval_ms)
    return _guard
