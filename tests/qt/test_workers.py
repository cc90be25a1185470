"""Background prediction: results reach the views while it runs; closing the window mid-run is clean."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from fusereview.core.records import Detection


class SlowPredictor:
    """A stand-in model (the Predictor protocol) that takes a while per batch, like a real one."""

    fingerprint = "slow-fake:1"
    device = "cpu"

    def __init__(self, seconds: float = 0.25) -> None:
        self.seconds = seconds
        self.calls = 0
        self.threads: set[str] = set()
        self.nice: set[int] = set()

    def predict(self, images, prompts, *, threshold: float = 0.3):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if hasattr(os, "getpriority") and sys.platform.startswith("linux"):
            self.nice.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        time.sleep(self.seconds)
        out = []
        for img in images:
            h, w = img.shape[:2]
            dets = []
            for cid, text in prompts:
                dets.append(Detection((w * 0.1, h * 0.1, w * 0.4, h * 0.5), 0.77, None, cid, text))
            out.append(dets)
        return out

    def predict_box(self, image, box, category_id, *, threshold: float = 0.3):
        m = np.zeros(image.shape[:2], dtype=bool)
        x0, y0, x1, y1 = (round(v) for v in box)
        m[y0:y1, x0:x1] = True
        from fusereview.core.geometry import mask_to_rle

        return [Detection(tuple(float(v) for v in box), 0.9, mask_to_rle(m), category_id, "")]


def test_predictions_arrive_current_image_first(qtbot, window, project) -> None:
    current = window.controller.image_id
    fake = SlowPredictor(0.05)
    window.set_predictor(fake)
    job = window.predict_job
    assert job is not None and job.image_ids[0] == current
    qtbot.waitUntil(lambda: window.predict_job is None, timeout=20_000)
    assert "MainThread" not in fake.threads, "the model must not run in the GUI thread"
    new = project.predictions(model=fake.fingerprint)
    assert {p.image_id for p in new} == {img.id for img in project.images()}
    # the queue (a view of the core) shows them without a reload
    assert window.controller.queue_model.rowCount() == len(project.predictions(states=["pending"]))
    # the current image's came first
    assert min(new, key=lambda p: p.id).image_id == current


def test_close_while_prediction_runs(qtbot, window, project) -> None:
    fake = SlowPredictor(0.4)
    window.set_predictor(fake)
    thread_jobs = list(window.runner._running)
    assert thread_jobs, "a prediction job is running"
    qtbot.waitUntil(lambda: fake.calls >= 1, timeout=10_000)
    t0 = time.monotonic()
    window.close()  # must stop the worker and wait for it; a destroyed running QThread would abort
    assert time.monotonic() - t0 < 10
    assert all(not t.isRunning() for t in thread_jobs)
    assert fake.calls < 5, "the job stopped early instead of finishing the dataset"


def test_refine_adds_a_mask_in_the_background(qtbot, window, project) -> None:
    window.predictor = SlowPredictor(0.05)
    c = window.controller
    c.select(None)
    n = len(project.annotations(image_id=c.image_id))
    c.refine((20.0, 30.0, 60.0, 90.0))
    qtbot.waitUntil(lambda: len(project.annotations(image_id=c.image_id)) == n + 1, timeout=10_000)
    new = max(project.annotations(image_id=c.image_id), key=lambda a: a.id)
    assert abs(new.area - 40 * 60) < 1


def test_jobs_run_below_the_windows_cpu_priority(qtbot, window, project) -> None:
    """On a 2-core machine a job competing with the window for a core made key presses wait."""
    if not sys.platform.startswith("linux"):
        return  # the per-thread nice value is Linux's
    from fusereview.qt.workers import BACKGROUND_NICE

    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    fake = SlowPredictor(0.01)
    window.set_predictor(fake)
    qtbot.waitUntil(lambda: window.predict_job is None, timeout=30_000)
    assert fake.calls and fake.nice == {max(gui, BACKGROUND_NICE)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui, "the window was lowered"
