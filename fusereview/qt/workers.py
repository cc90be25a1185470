"""Background jobs of the GUI: load a model, predict a dataset, refine a box with SAM3, segment a click.

A job's ``work`` runs in its own ``QThread``; only plain data crosses threads through signals. SQLite connections belong to the thread that made them, so a job that writes opens its
own :class:`~fusereview.core.project.Project` on the same folder (WAL lets the GUI keep reading).
Shutdown is always: ask the job to stop, ``wait()`` for its thread -- a running ``QThread`` that
is destroyed aborts the whole process.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from fusereview.core.errors import FusereviewError


class Job(QObject):
    """Base class of background jobs.

    Signals
    -------
    progress(int, int):
        Work done and total (total 0: unknown).
    finished(object):
        The job's result (plain data); emitted once when it ends normally or after a stop.
    failed(str):
        A one-line message; emitted instead of ``finished``.
    """

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    title = "job"

    def __init__(self) -> None:
        super().__init__()
        self._stop = False

    def request_stop(self) -> None:
        """Ask the job to stop at its next check (thread-safe: a plain flag)."""
        self._stop = True

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._stop

    @Slot()
    def run(self) -> None:
        """Run in the worker thread; reports through signals, never raises."""
        try:
            result = self.work()
        except FusereviewError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # a bug: keep the traceback for the log, tell the user in one line
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(result)

    def work(self) -> Any:
        """The job itself (in the worker thread)."""
        raise NotImplementedError


class LoadModelJob(Job):
    """Load a predictor (``"tiny"``, a folder, a checkpoint) without freezing the window."""

    title = "loading model"

    def __init__(self, spec: str, device: str | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.device = device

    def work(self) -> Any:
        from fusereview.models import load_predictor

        predictor = load_predictor(self.spec, device=self.device)
        # Import what predicting and the Click tool need here, in this thread, now: a first import
        # later holds Python's import lock while the GUI thread may need it, and transformers'
        # tracker modules (seconds of Python, run by their docstring decorators) then compete for
        # the GIL with the window just when the first predictions arrive.
        import fusereview.models.interactive
        import fusereview.models.predict_job  # noqa: F401

        _limit_torch_threads()
        return predictor


def _limit_torch_threads() -> None:
    # The GUI thread needs a core of its own to stay responsive on small machines.
    import torch

    n = max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() != n:  # resizing the thread pool holds the GIL for tens of ms
        torch.set_num_threads(n)


class PredictJob(Job):
    """Predict images of a project, the current image first, in chunks so results show early.

    Signals
    -------
    chunk_done(object):
        Tuple of prediction ids stored for the images of one finished chunk.
    """

    chunk_done = Signal(object)
    title = "predicting"

    def __init__(
        self,
        project_root: Path,
        predictor: Any,
        image_ids: list[int],
        *,
        threshold: float = 0.3,
        chunk: int = 8,
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.project_root = Path(project_root)
        self.predictor = predictor
        self.image_ids = list(image_ids)
        self.threshold = threshold
        self.chunk = chunk
        # Most torch CPU ops keep the GIL while they run: one image per call keeps each op short
        # enough for the GUI thread to get its turn (and costs little throughput on a CPU).
        on_cpu = str(getattr(predictor, "device", "cpu")).startswith("cpu")
        self.batch_size = batch_size or (1 if on_cpu else 4)

    def work(self) -> dict[str, Any]:
        from fusereview.core.project import Project
        from fusereview.models import predict_project

        _limit_torch_threads()
        project = Project.open(self.project_root)
        totals: dict[str, Any] = {"images": 0}
        total = len(self.image_ids)
        try:
            # the current image alone first: the reviewer sees its predictions right away
            chunks = [self.image_ids[:1]] + [
                self.image_ids[i : i + self.chunk] for i in range(1, total, self.chunk)
            ]
            done = 0
            for ids in chunks:
                if not ids or self.stop_requested:
                    break
                base = done

                def progress(n: int, _total: int = 0, *_: Any, base: int = base) -> None:
                    self.progress.emit(min(base + int(n), total), total)

                counts = predict_project(
                    project,
                    self.predictor,
                    image_ids=ids,
                    batch_size=self.batch_size,
                    threshold=self.threshold,
                    progress=progress,
                    should_stop=lambda: self.stop_requested,
                )
                for k, v in counts.items():
                    if isinstance(v, int) and not isinstance(v, bool):
                        totals[k] = totals.get(k, 0) + v
                    elif k == "failures":
                        totals.setdefault("failures", []).extend(v)
                done += len(ids)
                totals["images"] = done
                self.progress.emit(done, total)
                pids = tuple(p.id for i in ids for p in project.predictions(image_id=i))
                self.chunk_done.emit(pids)
        finally:
            project.close()
        totals["stopped"] = int(self.stop_requested)
        return totals


class RefineJob(Job):
    """SAM3 refine: segment inside a box drawn by the reviewer (box prompt)."""

    title = "refining"

    def __init__(
        self, predictor: Any, image_path: Path, box: tuple[float, float, float, float], category_id: int
    ) -> None:
        super().__init__()
        self.predictor = predictor
        self.image_path = image_path
        self.box = box
        self.category_id = category_id

    def work(self) -> list[Any]:
        from fusereview.core.images import load_image

        _limit_torch_threads()
        image = load_image(self.image_path)
        return list(self.predictor.predict_box(image, self.box, self.category_id, threshold=0.0))


class LoadInteractiveJob(Job):
    """Load the interactive (click) head that goes with a loaded predictor (the Click tool's model).

    Fails with the reason when the model has none (a detector-only export): the tool is greyed out
    with that reason as its tooltip.
    """

    title = "loading the interactive head"

    def __init__(self, spec: str, predictor: Any) -> None:
        super().__init__()
        self.spec = spec
        self.predictor = predictor

    def work(self) -> Any:
        from fusereview.models.interactive import load_interactive

        return load_interactive(self.spec, self.predictor)


class BoxCheckJob(Job):
    """Ask the interactive head about the box of each label no detection supports (label issues).

    Reads the project through its own connection (as :class:`PredictJob`), asks about the labels
    the spurious queue of ``model`` lists (:func:`fusereview.models.box_check.labels_to_check`) and
    finishes with ``{annotation id: support}``; a stop returns what was asked so far.
    """

    title = "checking label boxes"

    def __init__(self, project_root: Path, segmenter: Any, model: str) -> None:
        super().__init__()
        self.project_root = Path(project_root)
        self.segmenter = segmenter
        self.model = model

    def work(self) -> dict[int, float]:
        from fusereview.core.project import Project
        from fusereview.models.box_check import check_label_boxes, labels_to_check

        _limit_torch_threads()
        project = Project.open(self.project_root)
        try:
            ids = labels_to_check(project, self.model)
            self.progress.emit(0, len(ids))
            return check_label_boxes(
                project,
                self.segmenter,
                ids,
                progress=lambda done, total: self.progress.emit(done, total),
                cancelled=lambda: self.stop_requested,
            )
        finally:
            project.close()


class ClickJob(Job):
    """One click of the Click tool: the mask for all points so far (the image embedding is cached)."""

    title = "segmenting"

    def __init__(
        self,
        segmenter: Any,
        key: str,
        image_path: Path,
        points: list[tuple[float, float, int]],
        *,
        mask_logits: Any = None,
        mask: Any = None,
    ) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.key = key
        self.image_path = image_path
        self.points = list(points)
        self.mask_logits = mask_logits
        self.mask = mask

    def work(self) -> Any:
        from fusereview.core.images import load_image

        _limit_torch_threads()
        # the photo is decoded only when its embedding is not held yet (the first click on it)
        return self.segmenter.segment(
            self.key,
            lambda: load_image(self.image_path),
            self.points,
            mask_logits=self.mask_logits,
            mask=self.mask,
        )


BACKGROUND_NICE = 10
"""The nice value of background work (job threads, the training process): below the window's."""


def lower_priority(pid: int | None = None) -> bool:
    """Run a background process (``pid``), or the calling thread, below the window's CPU priority.

    On a machine with few cores the window and a job compete for a core; at nice 10 the kernel
    gives the window about nine tenths of a contended core, so a key press is handled at once
    while prediction or training only slows a little. A job thread is lowered on Linux only, where
    the nice value is a per-thread attribute set through the thread id (elsewhere a thread id is
    not a process id). Returns whether the priority was lowered; failing to lower it only costs
    responsiveness, so it is not an error.
    """
    if not hasattr(os, "setpriority"):
        return False
    if pid is None:
        if not sys.platform.startswith("linux"):
            return False
        pid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, max(current, BACKGROUND_NICE))
    except OSError:  # the process already ended, or the system refuses: only slower to answer
        return False
    return True


class _JobThread(QThread):
    """A thread that runs one job's ``run`` and ends (no event loop to quit, nothing to deadlock)."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.setObjectName(f"fusereview-{job.title}")

    def run(self) -> None:
        lower_priority()  # this thread only: the window's thread keeps its priority
        self.job.run()


class JobRunner(QObject):
    """Starts jobs in threads, keeps them alive while they run, and stops them all on close.

    The job objects stay in the GUI thread; their ``work`` runs in the job's thread and their
    signals reach GUI-thread receivers queued.

    Signals
    -------
    busy_changed(bool):
        Whether any job is running.
    """

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: list[_JobThread] = []

    def start(self, job: Job) -> Job:
        """Run ``job`` in a new thread."""
        thread = _JobThread(job)
        self._running.append(thread)
        thread.finished.connect(lambda t=thread: self._forget(t))
        thread.start()
        self.busy_changed.emit(True)
        return job

    def _forget(self, thread: _JobThread) -> None:
        if thread in self._running:
            thread.wait()
            self._running.remove(thread)
        self.busy_changed.emit(bool(self._running))

    @property
    def jobs(self) -> list[Job]:
        """Jobs still running."""
        return [t.job for t in self._running if t.isRunning()]

    def stop_all(self, timeout_ms: int = 60_000) -> bool:
        """Ask every job to stop and wait for their threads; returns whether all ended in time."""
        for thread in self._running:
            thread.job.request_stop()
        ok = all([thread.wait(timeout_ms) for thread in list(self._running)])
        self._running = [t for t in self._running if t.isRunning()]
        return ok
