"""A training run of the GUI in its own process: ``fusereview train``, followed through its run folder.

Training used to run in a ``QThread`` of the window. A training step is Python-heavy (matching,
losses, hooks) and much of its C work keeps the GIL, so the window's event loop stalled once per
step (measured on the demo's fast preset in a real X window: a 50 ms gap every step, 435 ms at
the start, p99 44 ms). In a process of its own the run cannot hold the window's GIL: the window
reads what the run writes (``metrics.jsonl``, the same records the engine's hooks emit) every
half second, exactly as it follows a run on a remote server. Stopping is the command's own
interrupt (SIGTERM: the step finishes, ``checkpoints/last`` is saved, the run stays resumable),
and the engine, the CLI and the GUI run one and the same code path.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from fusereview.training.runs import MetricsFollower

#: TrainConfig fields the panel may override, and the ``fusereview train`` flag of each.
OVERRIDE_FLAGS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "image_size": "--image-size",
    "eval_every": "--eval-every",
    "max_steps": "--max-steps",
    "dropout": "--dropout",
    "device": "--device",
}
POLL_MS = 500


def train_command(
    source: Path, model_spec: str, preset: str, run_dir: Path, *, resume: bool, overrides: dict[str, Any]
) -> list[str]:
    """The ``fusereview train`` command line of a run (the bundle's own executable when frozen)."""
    exe = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "fusereview"]
    if resume:
        return [*exe, "train", "--resume", str(run_dir)]
    cmd = [*exe, "train", str(source), "--model", model_spec, "--preset", preset, "--run-dir", str(run_dir)]
    for field, value in overrides.items():
        if field not in OVERRIDE_FLAGS:
            raise ValueError(f"training override {field!r} has no `fusereview train` option")
        if value is not None:
            cmd += [OVERRIDE_FLAGS[field], str(value)]
    return cmd


class TrainingProcess(QObject):
    """One ``fusereview train`` process and the records of its run folder.

    Signals
    -------
    records(list):
        The step / epoch / val / end records written since the last poll, as ``metrics.jsonl``
        holds them (one batch per poll: plotting them one by one redrew the plots each time).
    finished(dict):
        ``{"status", "message", "run_dir", "best_map", "best_path"}`` once the run has ended.
    failed(str):
        A one-line message when the run could not start, or ended without an end record.
    """

    records = Signal(list)
    finished = Signal(dict)
    failed = Signal(str)

    def __init__(
        self, command: list[str], run_dir: Path, log_path: Path, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.command = command
        self.run_dir = Path(run_dir)
        self.log_path = Path(log_path)
        self.follower = MetricsFollower(self.run_dir)
        self.end: dict[str, Any] | None = None
        self.proc = QProcess(self)
        self.proc.setProgram(command[0])
        self.proc.setArguments(command[1:])
        env = self.proc.processEnvironment()
        if env.isEmpty():
            from PySide6.QtCore import QProcessEnvironment

            env = QProcessEnvironment.systemEnvironment()
        # one core stays the window's (torch would take them all)
        env.insert("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
        env.insert("PYTHONUNBUFFERED", "1")
        self.proc.setProcessEnvironment(env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc.setStandardOutputFile(str(self.log_path))
        self.proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.lowered = False
        self.proc.started.connect(self._started)
        self.proc.finished.connect(self._ended)
        self.proc.errorOccurred.connect(self._error)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)

    def start(self) -> None:
        """Start the process and follow its run folder."""
        self.proc.start()
        self.timer.start()

    def _started(self) -> None:
        from fusereview.qt.workers import lower_priority

        self.lowered = lower_priority(int(self.proc.processId()))  # the window keeps the CPU it needs

    def is_running(self) -> bool:
        """Whether the process is still going."""
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def request_stop(self) -> None:
        """Stop after the current step: SIGTERM, which the command turns into a saved, resumable stop."""
        if self.is_running():
            self.proc.terminate()

    def wait(self, timeout_ms: int) -> bool:
        """Wait for the process to end; returns whether it did."""
        if not self.is_running():
            return True
        ended = self.proc.waitForFinished(timeout_ms)
        self.poll()
        return ended

    def poll(self) -> None:
        """Hand on the run's new records (one batch)."""
        recs = self.follower.poll()
        for rec in recs:
            if rec.get("type") == "end":
                self.end = rec
        if recs:
            self.records.emit(recs)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.timer.stop()
            self.failed.emit(f"could not start {shlex.join(self.command)}: {self.proc.errorString()}")

    def _ended(self, code: int, _status: Any) -> None:
        self.timer.stop()
        self.poll()
        end = self.end
        if end is None:
            self.failed.emit(f"training ended (exit {code}) before it started: {self._last_line()}")
            return
        best = self.run_dir / "checkpoints" / "best"
        self.finished.emit(
            {
                "status": end.get("status"),
                "message": end.get("message", ""),
                "run_dir": str(self.run_dir),
                "best_map": end.get("best_map"),
                "best_path": str(best) if (best / "model.safetensors").exists() else None,
            }
        )

    def _last_line(self) -> str:
        """The command's last line of output (its one-line error)."""
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no output"
        return lines[-1] if lines else "no output"
