"""Python's cyclic garbage collector runs in the GUI thread only.

Python collects cycles in whichever thread happens to allocate when a generation's threshold is
reached: often a worker (the training thread imports torch and allocates a lot). When the cycles
hold wrappers of Qt widgets (a closed project's panels, a lambda connected to a signal that
refers back to its widget), their C++ destructors then run in that worker thread while the GUI
thread paints: a segmentation fault (seen in the suite: ``__dynamic_cast`` under
``gc_collect_generations`` in a ``QThread``). So, while the application runs, automatic
collection is off and a timer in the GUI thread collects instead, generation by generation, as
often as the thresholds would have.

A full collection walks every object: with torch, transformers and a model loaded that is about
350 ms of the GUI thread (measured on the demo, 2-core CPU). So what is loaded to stay (modules, the
model) is frozen out of the collector once it is loaded (:func:`settle`, ``gc.freeze``), and the
oldest generation is collected at most once a minute.
"""

from __future__ import annotations

import gc
import time
from typing import Any

_guard: Any = None
#: The oldest generation is collected at most this often (a full collection costs the most).
FULL_EVERY_S = 60.0


class GuiThreadCollector:
    """Collect garbage from a GUI-thread timer (checked every ``interval_ms``) instead of anywhere."""

    def __init__(self, interval_ms: int = 500) -> None:
        from PySide6.QtCore import QTimer

        self.thresholds = gc.get_threshold()
        self.last_full = time.monotonic()
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
                if generation == 2:
                    if time.monotonic() - self.last_full < FULL_EVERY_S:
                        continue
                    self.last_full = time.monotonic()
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


def settle() -> None:
    """What exists now is here to stay (modules, a loaded model): keep it out of every collection.

    ``gc.freeze`` is cheap (no traversal); later garbage is collected as before. Called once a model
    is loaded and once a workspace's heavy panel is built.
    """
    if _guard is not None:
        gc.freeze()
