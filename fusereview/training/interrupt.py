"""Ctrl-C and ``kill`` during training: finish the step, save a resumable checkpoint, then stop.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the loop happens to be, so an
interrupted run saved nothing since its last epoch. :class:`StopOnSignals` instead turns the first
SIGINT or SIGTERM into a stop request, which the loop reads before its next step (after the
current one finished); the trainer then writes ``checkpoints/last`` and ends as ``stopped``. A
second signal, for someone who really wants out now, raises ``KeyboardInterrupt`` as usual.

Signal handlers can only be installed from the main thread: elsewhere (the GUI's training
thread, which has its own Stop button) the context manager does nothing.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

#: Exit status of a command stopped by a signal (the shell's 128 + SIGINT, used for SIGTERM too).
EXIT_INTERRUPTED = 130

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignals:
    """Within the ``with`` block, the first SIGINT/SIGTERM calls ``request_stop()``.

    Parameters
    ----------
    request_stop:
        Called once, from the signal handler (it must only set a flag).
    stream:
        Where the one-line notice goes (default: ``sys.stderr``).

    Attributes
    ----------
    received:
        The first signal's name (``"SIGINT"``, ``"SIGTERM"``), or ``None``.
    """

    def __init__(self, request_stop: Callable[[], None], *, stream: IO[str] | None = None) -> None:
        self.request_stop = request_stop
        self.stream = stream
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            # the second one: give up at once, as an uncaught Ctrl-C would
            self._restore()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        self.request_stop()
        out = self.stream or sys.stderr
        out.write(
            f"\n{self.received}: stopping after this step and saving a checkpoint to resume from "
            "(send it again to quit without saving)\n"
        )
        out.flush()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
