"""Progress bars for the commands: a live tqdm bar on a terminal, a plain line every few seconds in a log.

A ``\\r``-redrawn bar written to a file or a pipe (``fusereview train ... 2> train.log``, a CI
log, ``| tee``) turns into one endless line of carriage returns. So when the stream is not a
terminal the same tqdm bar is printed as ordinary lines, at most one every ``log_interval``
seconds plus the last one.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from tqdm import tqdm

#: Seconds between two progress lines when the output is not a terminal.
LOG_INTERVAL = 5.0
#: Seconds between two redraws of a live bar.
LIVE_INTERVAL = 0.1


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or odd stream
        return False


class _LineWriter:
    """A file-like object that turns tqdm's ``\\r``-redraws into whole lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        # tqdm writes "\r" + bar + padding for a redraw, "\n" on close, and "\r   \r" to clear
        # the bar before a message: keep only what has words, one line each.
        for part in text.replace("\r", "\n").split("\n"):
            line = part.rstrip()
            if line:
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


class Progress:
    """A ``progress(done, total)`` callback drawing a tqdm bar.

    Parameters
    ----------
    label:
        Shown before the bar.
    unit:
        What is counted (``"img"``, ``"step"``).
    stream:
        Where to write (default: ``sys.stderr``).
    enabled:
        ``False`` draws nothing (e.g. every rank but the first under ``torchrun``).
    log_interval:
        Seconds between lines when ``stream`` is not a terminal (default :data:`LOG_INTERVAL`;
        the environment variable ``FUSEREVIEW_PROGRESS_INTERVAL`` overrides it).
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "img",
        stream: IO[str] | None = None,
        enabled: bool = True,
        log_interval: float | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = is_terminal(self.stream)
        if log_interval is None:
            log_interval = float(os.environ.get("FUSEREVIEW_PROGRESS_INTERVAL", LOG_INTERVAL))
        self.log_interval = log_interval
        self.bar: tqdm | None = None

    def _open(self, total: int, initial: int) -> tqdm:
        file = self.stream if self.live else _LineWriter(self.stream)
        return tqdm(
            total=total,
            initial=initial,
            desc=self.label,
            unit=self.unit,
            file=file,
            mininterval=LIVE_INTERVAL if self.live else self.log_interval,
            maxinterval=max(10.0, self.log_interval) if self.live else 1e9,
            ascii=not self.live,
            ncols=None if self.live else 100,
            dynamic_ncols=self.live,
            leave=True,
        )

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total``; the bar closes (final line) when ``done`` reaches ``total``."""
        if not self.enabled:
            return
        if self.bar is None:
            # A resumed job starts part-way: its rate and ETA count from there.
            self.bar = self._open(total, done)
        if self.bar.total != total:
            self.bar.total = total
        if total and done >= total:
            # close() prints the final state; an update first would print it twice in a log
            self.bar.n = done
            self.close()
        elif done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def set_postfix(self, text: str) -> None:
        """Text after the counts (loss, learning rate...); shown with the next redraw."""
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def write(self, message: str) -> None:
        """Print a line of its own without breaking the bar."""
        if not self.enabled:
            return
        if self.bar is not None and self.live:
            self.bar.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Print the final state (once) and stop."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
