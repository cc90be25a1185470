"""Change notifications of a project: what the GUI subscribes to so its views follow the database.

The hub is deliberately plain (no Qt): the Qt layer connects a callback that re-emits the event
as a signal. Callbacks run synchronously in the thread that made the change, *after* the change
is committed, so a subscriber that reads the database sees the new state. A Qt subscriber that
may be called from a worker thread must hop to the GUI thread itself (a queued signal does that).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: The kinds of event a project emits, and what ``ids`` holds for each.
EVENT_KINDS: dict[str, str] = {
    "decided": "prediction ids whose review state changed",
    "annotation_changed": "annotation ids created, edited, deleted or restored",
    "predictions_added": "prediction ids newly stored by a model run",
    "predictions_removed": "prediction ids of pending predictions replaced by a newer model run (rows deleted)",
    "prompt_changed": "category ids whose text prompt changed",
    "matches_changed": "prediction ids whose match to an annotation changed (core.matching)",
    "label_checked": "label_checks row ids recorded or undone (a label-issue fix or verdict, ADR 0022)",
}


@dataclass(frozen=True)
class Event:
    """One committed change.

    Attributes
    ----------
    kind:
        One of :data:`EVENT_KINDS`.
    ids:
        The ids the change touched (see :data:`EVENT_KINDS` for which table they index).
    """

    kind: str
    ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; expected one of {sorted(EVENT_KINDS)}")


Callback = Callable[[Event], None]


class EventHub:
    """A list of subscribers; :meth:`emit` calls each of them in the order they connected."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        # connect/disconnect may race with an emit from a worker thread (predict in a QThread)
        self._lock = threading.Lock()
        # events of changes made inside an outer transaction wait for its commit (see hold())
        self._held: threading.local = threading.local()

    def connect(self, callback: Callback) -> None:
        """Subscribe ``callback`` to every event (connecting twice is a no-op)."""
        with self._lock:
            if callback not in self._callbacks:
                self._callbacks.append(callback)

    def disconnect(self, callback: Callback) -> None:
        """Unsubscribe ``callback``; raises ``ValueError`` if it was not connected."""
        with self._lock:
            self._callbacks.remove(callback)

    def emit(self, event: Event) -> None:
        """Call every subscriber with ``event``; never raises a subscriber's exception.

        The change is already committed when this runs, so an exception here must not reach the
        writer (an undo command's ``redo`` would report a failure for a change that happened, and
        the undo stack would lose track of it), nor stop the other subscribers (every view must
        hear of the change). A failing subscriber is logged at ERROR level with its traceback
        (logger ``fusereview.core.events``) so that the bug is not hidden.
        """
        queue = getattr(self._held, "queue", None)
        if queue is not None:
            queue.append(event)
            return
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:  # logged, never raised into the writer: see the docstring
                log.exception("event subscriber %r failed on %s %s", callback, event.kind, event.ids[:20])

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold back this thread's events until the block ends; drop them if it raises.

        For a change made of several writes in one outer transaction (a label-issue fix is a
        decision plus a ledger row): enter ``hold()`` *before* the transaction, so that the
        events are emitted after its commit, as subscribers expect, and never for a change that
        was rolled back. Nested holds release at the outermost one.
        """
        outer = getattr(self._held, "queue", None) is None
        if outer:
            self._held.queue = []
        try:
            yield
        except BaseException:
            if outer:
                self._held.queue = None
            raise
        if outer:
            queue, self._held.queue = self._held.queue, None
            for event in queue:
                self.emit(event)

    def __len__(self) -> int:
        return len(self._callbacks)
