"""Cyclic garbage holding Qt widgets is collected in the GUI thread, never in a worker thread."""

from __future__ import annotations

import gc
import threading

from PySide6.QtWidgets import QWidget


def test_automatic_collection_is_off_and_the_gui_thread_collects(qtbot) -> None:
    from fusereview.qt.gc_guard import install

    guard = install()
    assert not gc.isenabled(), "a worker thread could collect Qt wrappers (and crash the process)"
    collected_in: list[str] = []

    class Cycle(QWidget):
        def __del__(self) -> None:
            collected_in.append(threading.current_thread().name)

    w = Cycle()
    w.self_ref = w  # a cycle: only the cyclic collector frees it
    del w
    # a worker allocating a lot must not trigger the collection of that cycle
    t = threading.Thread(target=lambda: [[i] for i in range(200_000)], name="worker")
    t.start()
    t.join()
    assert collected_in == []
    gc.set_threshold(1, 1, 1)
    try:
        qtbot.waitUntil(lambda: bool(collected_in), timeout=5000)
    finally:
        gc.set_threshold(*guard.thresholds)
    assert collected_in == [threading.main_thread().name]
