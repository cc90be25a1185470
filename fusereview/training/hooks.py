"""Hooks of the training loop (detectron2 style): everything beyond the step itself is a hook.

The loop calls ``before_train``, then per step ``before_step`` / ``after_step``, ``after_epoch``,
``after_validation`` when it validated, and ``after_train`` in a ``finally``. Hooks read the trainer's
plain-data state: ``trainer.step``, ``trainer.epoch``, ``trainer.latest`` (the last step record),
``trainer.last_validation``, ``trainer.result``.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from fusereview.core.progress import Progress

if TYPE_CHECKING:
    from fusereview.training.engine import Trainer


class HookBase:
    """A hook; override the methods you need (all default to nothing)."""

    def before_train(self, trainer: Trainer) -> None:
        """Called once, after setup (model, data, resume) and before the first step."""

    def before_step(self, trainer: Trainer) -> None:
        """Called before every optimizer step."""

    def after_step(self, trainer: Trainer) -> None:
        """Called after every optimizer step; ``trainer.latest`` holds its record."""

    def after_epoch(self, trainer: Trainer) -> None:
        """Called at the end of every epoch; ``trainer.epoch_record`` holds its record."""

    def after_validation(self, trainer: Trainer) -> None:
        """Called after a validation; ``trainer.last_validation`` holds its record."""

    def after_train(self, trainer: Trainer) -> None:
        """Called once in a ``finally``; ``trainer.result`` says how the run ended."""


class MetricsWriter(HookBase):
    """Append every step, validation, epoch and end record to the run's ``metrics.jsonl``."""

    def __init__(self, log_every: int = 1) -> None:
        self.log_every = max(1, log_every)

    def after_step(self, trainer: Trainer) -> None:
        if trainer.is_main and trainer.step % self.log_every == 0:
            trainer.run.append(trainer.latest)

    def after_epoch(self, trainer: Trainer) -> None:
        if trainer.is_main:
            trainer.run.append(trainer.epoch_record)

    def after_validation(self, trainer: Trainer) -> None:
        if trainer.is_main:
            trainer.run.append(trainer.last_validation)

    def after_train(self, trainer: Trainer) -> None:
        # a run that failed in setup (a model that would not load, a run folder that could not be
        # made) has no metrics.jsonl to append to: its error is the one to report, not ours
        if trainer.is_main and trainer.result is not None and trainer.started:
            r = trainer.result
            trainer.run.append(
                {
                    "type": "end",
                    "time": time.time(),
                    "status": r.status,
                    "message": r.message,
                    "best_epoch": r.best_epoch,
                    "best_map": r.best_map,
                }
            )


class ConsoleProgress(HookBase):
    """A tqdm bar over the run's steps on stderr and a one-line summary per epoch and validation.

    On a terminal the bar is redrawn in place; written to a file or a pipe it becomes a plain line
    every few seconds (see :mod:`fusereview.core.progress`).
    """

    def __init__(
        self, stream: Any = None, log_interval: float | None = None, *, summary: bool = True
    ) -> None:
        self.stream = stream or sys.stderr
        self.log_interval = log_interval
        self.summary = summary  # the closing "status: message" line (a command that prints its own says no)
        self.bar: Progress | None = None

    def before_train(self, trainer: Trainer) -> None:
        self.bar = Progress(
            "train",
            unit="step",
            stream=self.stream,
            enabled=trainer.is_main,
            log_interval=self.log_interval,
        )
        # a resumed run starts part-way: the bar (and its rate and ETA) starts there too
        self.bar(trainer.start_step, trainer.total_steps)

    def after_step(self, trainer: Trainer) -> None:
        if self.bar is None or not trainer.is_main:
            return
        rec = trainer.latest
        self.bar.set_postfix(
            f"epoch {rec['epoch']:.2f} loss {rec['loss']:.4f} lr {rec['lr']:.2e} {rec['images_per_s']:.1f} img/s"
        )
        self.bar(trainer.step, trainer.total_steps)

    def _say(self, trainer: Trainer, message: str) -> None:
        if not trainer.is_main:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()

    def after_epoch(self, trainer: Trainer) -> None:
        r = trainer.epoch_record
        self._say(trainer, f"epoch {r['epoch']}: loss {r['loss']:.4f} ({r['seconds']:.1f}s)")

    def after_validation(self, trainer: Trainer) -> None:
        v = trainer.last_validation
        fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
        self._say(
            trainer,
            f"validation epoch {v['epoch']}: bbox AP {fmt(v['bbox']['AP'])} AP50 {fmt(v['bbox']['AP50'])}  segm AP {fmt(v['segm']['AP'])}",
        )

    def after_train(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.summary and trainer.is_main and trainer.result is not None:
            self.stream.write(f"{trainer.result.status}: {trainer.result.message}\n")
            self.stream.flush()


class ProjectRunRecord(HookBase):
    """Register the run in a project's runs table once it has started, and record how it ended.

    Registered in ``before_train``, i.e. after setup succeeded: a refused ``--resume`` (or a run
    that cannot start) adds no row. A resumed run folder keeps its row (``Project.add_run`` is
    idempotent per folder), with its preset and starting model as first recorded.

    Parameters
    ----------
    project:
        The open project, or ``None`` (a dataset folder: nothing to record).
    run_dir:
        The run folder (absolute).
    preset, model:
        What the row's ``config`` records.
    resumed:
        Whether this process resumes the run.
    """

    def __init__(self, project: Any, run_dir: Any, preset: str, model: str, *, resumed: bool = False) -> None:
        self.project = project
        self.run_dir = run_dir
        self.config = {"preset": preset, "model": model, "resume": resumed}
        self.run_id: int | None = None

    def before_train(self, trainer: Trainer) -> None:
        if self.project is not None and trainer.is_main:
            self.run_id = self.project.add_run(self.run_dir, self.config)

    def after_train(self, trainer: Trainer) -> None:
        r = trainer.result
        if self.run_id is None or r is None:
            return
        self.project.update_run(
            self.run_id,
            status=r.status,
            best_metric=r.best_map,
            best_model_path=str(r.best_path) if r.best_path else None,
        )


class CallbackHook(HookBase):
    """Forward records to a callable as plain dicts (the Qt worker's bridge).

    Parameters
    ----------
    callback:
        Called with each step / epoch / validation / end record (a new dict each time).
    """

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def after_step(self, trainer: Trainer) -> None:
        self.callback(dict(trainer.latest))

    def after_epoch(self, trainer: Trainer) -> None:
        self.callback(dict(trainer.epoch_record))

    def after_validation(self, trainer: Trainer) -> None:
        self.callback(
            {
                **trainer.last_validation,
                "bbox": dict(trainer.last_validation["bbox"]),
                "segm": dict(trainer.last_validation["segm"]),
            }
        )

    def after_train(self, trainer: Trainer) -> None:
        if trainer.result is not None:
            r = trainer.result
            self.callback(
                {
                    "type": "end",
                    "status": r.status,
                    "message": r.message,
                    "best_epoch": r.best_epoch,
                    "best_map": r.best_map,
                    "run_dir": str(r.run_dir),
                }
            )
