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
    """A ``\\r``-updated progress bar on stderr and a one-line summary per epoch."""

    def __init__(self, stream: Any = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self._t0 = 0.0

    def before_train(self, trainer: Trainer) -> None:
        self._t0 = time.time()

    def after_step(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        done = trainer.step / max(1, trainer.total_steps)
        bar = "#" * int(done * self.width)
        rec = trainer.latest
        eta = (
            (time.time() - self._t0)
            / max(1e-9, trainer.step - trainer.start_step)
            * (trainer.total_steps - trainer.step)
            if trainer.step > trainer.start_step
            else 0
        )
        self.stream.write(
            f"\r[{bar:<{self.width}}] step {trainer.step}/{trainer.total_steps} epoch {rec['epoch']:.2f} loss {rec['loss']:.4f} lr {rec['lr']:.2e} {rec['images_per_s']:.1f} img/s ETA {eta:.0f}s "
        )
        self.stream.flush()

    def after_epoch(self, trainer: Trainer) -> None:
        if trainer.is_main:
            r = trainer.epoch_record
            self.stream.write(f"\nepoch {r['epoch']}: loss {r['loss']:.4f} ({r['seconds']:.1f}s)\n")

    def after_validation(self, trainer: Trainer) -> None:
        if trainer.is_main:
            v = trainer.last_validation
            fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
            self.stream.write(
                f"validation epoch {v['epoch']}: bbox AP {fmt(v['bbox']['AP'])} AP50 {fmt(v['bbox']['AP50'])}  segm AP {fmt(v['segm']['AP'])}\n"
            )

    def after_train(self, trainer: Trainer) -> None:
        if trainer.is_main and trainer.result is not None:
            self.stream.write(f"\n{trainer.result.status}: {trainer.result.message}\n")
            self.stream.flush()


class RegisterRun(HookBase):
    """Add the project's ``runs`` row when the run starts (setup done, run folder written).

    Registering before ``train()`` left a row stuck at "created" for every run that failed in
    setup (a model that does not load, a run folder that cannot be made).

    Parameters
    ----------
    project:
        The :class:`~fusereview.core.project.Project`.
    run_dir, config:
        What :meth:`~fusereview.core.project.Project.add_run` records.
    """

    def __init__(self, project: Any, run_dir: Any, config: dict[str, Any]) -> None:
        self.project, self.run_dir, self.config = project, run_dir, config
        self.run_id: int | None = None

    def before_train(self, trainer: Trainer) -> None:
        self.run_id = self.project.add_run(self.run_dir, self.config)


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
