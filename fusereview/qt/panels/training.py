"""The training panel: retrain, watch live plots, stop / resume, open any run folder.

:class:`TrainingPanel` is a standalone ``QWidget`` (the Train workspace shows it). A run is
``fusereview train`` in a process of its own (:mod:`fusereview.qt.training_process`: a thread's
training steps held the window's GIL), whose ``metrics.jsonl`` records are plotted as they come. A run folder opened with "Open run folder…" is followed by polling its ``metrics.jsonl``
(a run on a remote GPU server, in a synced folder, plots while it grows).

Closing: :meth:`TrainingPanel.shutdown` asks the run to stop (SIGTERM: it saves ``last``) and waits
for the process.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from fusereview.qt.panels.plot_legend import outside_legend
from fusereview.qt.training_process import TrainingProcess, train_command
from fusereview.training.losses import COMPONENTS
from fusereview.training.presets import PRESET_HELP, PRESETS
from fusereview.training.runs import MetricsFollower, list_runs, read_metrics

LOSS_KEYS = ("loss", *COMPONENTS)  # the total, then every component the engine logs
VAL_KEYS = ("AP", "AP50", "AP75")
_IOU_OF = {"AP": "0.50:0.95", "AP50": "0.50", "AP75": "0.75"}
# Tableau's 20 colours (light and dark of ten hues): distinct on the dark plot background for
# as many loss components as a recipe logs (13 today); beyond 20 they repeat with a dash.
_PALETTE = (
    (255, 255, 255), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232),
    (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210),
    (199, 199, 199), (219, 219, 141),
)  # fmt: skip


AXIS_WIDTH_PX = 58  # the left axis: room for '0.0001' and '1000' beside the axis label


def _pen(i: int, width: float = 1) -> Any:
    """The i-th curve's pen: its own colour, dashed once the palette is used up."""
    style = Qt.PenStyle.SolidLine if i < len(_PALETTE) else Qt.PenStyle.DashLine
    return pg.mkPen(_PALETTE[i % len(_PALETTE)], width=width, style=style)


class RunPlots(QWidget):
    """The plots of one run: losses, learning rate, validation AP, images/s, GPU memory.

    Feed it records with :meth:`add`; :meth:`clear` starts over.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        self.loss_plot = pg.PlotWidget(title="loss (moving average of 20 steps)")
        self.lr_plot = pg.PlotWidget(title="learning rate")
        self.val_plot = pg.PlotWidget(title="validation (boxes)")
        self.speed_plot = pg.PlotWidget(title="speed")
        self.mem_plot = pg.PlotWidget(title="GPU memory")
        # the loss (the plot a person watches) is large; the others share the right-hand column
        grid.addWidget(self.loss_plot, 0, 0, 2, 2)
        grid.addWidget(self.val_plot, 0, 2)
        grid.addWidget(self.lr_plot, 1, 2)
        grid.addWidget(self.speed_plot, 2, 0, 1, 3)  # the whole row until there is GPU memory to show
        grid.addWidget(self.mem_plot, 2, 1, 1, 2)
        self.grid = grid
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        for w, ylabel in (
            (self.loss_plot, "loss"),
            (self.lr_plot, "learning rate"),
            (self.val_plot, "AP"),
            (self.speed_plot, "images/s"),
            (self.mem_plot, "GB"),
        ):
            w.setLabel("bottom", "epoch")
            w.setLabel("left", ylabel)
            w.getAxis("left").enableAutoSIPrefix(False)  # "AP (x0.001)" reads as a different number
            # a fixed width for the tick labels: an axis that widens for "400" or "0.0001" re-lays
            # out its whole plot, the window's longest stall (75 ms) at a run's first records
            w.getAxis("left").setWidth(AXIS_WIDTH_PX)
            w.setMinimumHeight(110)
        # on the CPU there is no GPU memory to plot: the plot appears with the first value
        self.mem_plot.hide()
        self.loss_legend = outside_legend(self.loss_plot)
        self.val_legend = outside_legend(self.val_plot)
        self.curves: dict[str, pg.PlotDataItem] = {}
        for i, k in enumerate(LOSS_KEYS):
            name = k.replace("loss_", "") if k != "loss" else "total"
            self.curves[k] = self.loss_plot.plot(pen=_pen(i, 2 if k == "loss" else 1))
            self.loss_legend.addItem(self.curves[k], name)
        self.curves["lr"] = self.lr_plot.plot(pen=_pen(9))
        for i, k in enumerate(VAL_KEYS):
            self.curves[f"val_{k}"] = self.val_plot.plot(pen=_pen(i + 1), symbol="o", symbolSize=5)
            self.curves[f"val_{k}"].setSymbolBrush(_PALETTE[i + 1])
            self.val_legend.addItem(self.curves[f"val_{k}"], f"{k} (IoU {_IOU_OF[k]})")
        self.curves["images_per_s"] = self.speed_plot.plot(pen=_pen(10))
        self.curves["gpu_mem_gb"] = self.mem_plot.plot(pen=_pen(5))
        self.data: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self.curves}
        self.log_y = False
        self._ranges: dict[Any, tuple[float, float, float]] = {}
        self._plot_keys = {
            self.loss_plot: list(LOSS_KEYS),
            self.val_plot: [f"val_{k}" for k in VAL_KEYS],
            self.lr_plot: ["lr"],
            self.speed_plot: ["images_per_s"],
            self.mem_plot: ["gpu_mem_gb"],
        }
        self.last_step: dict[str, Any] = {}
        self.ended: dict[str, Any] | None = None
        # plots whose curves wait for their redraw (plot -> keys), one plot per event-loop turn
        self._dirty: dict[Any, set[str]] = {}
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(0)
        self._redraw_timer.timeout.connect(self._redraw_next)
        self._manual: set[Any] = set()  # plots whose auto-range is off (turning it off costs a fit)

    def clear(self) -> None:
        """Forget every point."""
        self._dirty.clear()
        for k in self.data:
            self.data[k] = ([], [])
            self.curves[k].setData([], [])
        self.last_step = {}
        self.ended = None
        self._ranges = {}

    def set_log_scale(self, on: bool) -> None:
        """Log scale for the loss plot (its axes then follow pyqtgraph's auto-range)."""
        self.log_y = on
        self.loss_plot.setLogMode(y=on)
        self._ranges.pop(self.loss_plot, None)
        if on:
            self.loss_plot.enableAutoRange()
            self._manual.discard(self.loss_plot)

    def points(self, key: str) -> int:
        """Number of points of a curve (``loss``, ``lr``, ``val_AP50``...)."""
        return len(self.data[key][0])

    def add(self, records: list[dict[str, Any]]) -> None:
        """Append records (step / val / end) and redraw the touched curves."""
        touched = set()
        for r in records:
            kind = r.get("type")
            if kind == "step":
                x = float(r.get("epoch", r.get("step", 0)))
                for k in (*LOSS_KEYS, "lr", "images_per_s", "gpu_mem_gb"):
                    v = r.get(k)
                    if isinstance(v, (int, float)) and math.isfinite(v):
                        self.data[k][0].append(x)
                        self.data[k][1].append(float(v))
                        touched.add(k)
                self.last_step = r
            elif kind == "val":
                for k in VAL_KEYS:
                    v = (r.get("bbox") or {}).get(k)
                    if v is not None:
                        self.data[f"val_{k}"][0].append(float(r["epoch"]))
                        self.data[f"val_{k}"][1].append(float(v))
                        touched.add(f"val_{k}")
            elif kind == "end":
                self.ended = r
        if "gpu_mem_gb" in touched and self.mem_plot.isHidden():
            self.grid.removeWidget(self.speed_plot)
            self.grid.addWidget(self.speed_plot, 2, 0)
            self.mem_plot.show()
        for plot, keys in self._plot_keys.items():
            hit = touched.intersection(keys)
            if hit:
                self._dirty.setdefault(plot, set()).update(hit)
        # Each plot is redrawn in its own turn of the event loop: new ranges re-generate every
        # axis's ticks, and all plots at once held the window for 50-75 ms (a plot at a time, the
        # window answers in between)
        if self._dirty and not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def flush(self) -> None:
        """Redraw every waiting plot now (a screenshot, a test)."""
        while self._dirty:
            self._redraw_next()

    def _redraw_next(self) -> None:
        if not self._dirty:
            return
        plot = next(iter(self._dirty))
        keys = self._dirty.pop(plot)
        shown: dict[str, list[float]] = {}
        for k in keys:
            xs, ys = self.data[k]
            # per-step values are noisy (batches of 2 images): what a person reads is the trend
            shown[k] = _smoothed(ys) if k in _SMOOTHED else ys
            self.curves[k].setData(xs, shown[k])
        self._fit_ranges(keys, shown)
        if self._dirty:
            self._redraw_timer.start()

    def _fit_ranges(self, touched: set[str], shown: dict[str, list[float]]) -> None:
        """Change a plot's axes only when its data leave them (or shrink far inside them).

        pyqtgraph's auto-range re-lays out the axes on every update: measured in a real X window,
        that redraw cost 35-45 ms per update, the window's longest stalls during a retrain. The x
        axis spans the whole run (its epochs are known from the first step); y grows with 20 %
        headroom and shrinks when the curves fall below a third of it.
        """
        total = self._run_epochs()
        for plot, keys in self._plot_keys.items():
            keys = [k for k in keys if self.data[k][0]]
            if not keys or not (touched & set(keys)):
                continue
            if plot is self.loss_plot and self.log_y:
                plot.enableAutoRange()
                continue
            xmax = max(self.data[k][0][-1] for k in keys)
            ys = [v for k in keys for v in (shown.get(k) or self.data[k][1])]
            lo, hi = min(ys), max(ys)
            x_top = total if total and total >= xmax else max(1.0, xmax * 1.5)
            cur = self._ranges.get(plot)
            y_lo = min(0.0, lo)
            if (
                cur is None
                or hi > cur[2]
                or lo < cur[1]
                or x_top > cur[0]
                or (hi - y_lo) < (cur[2] - cur[1]) / 3
            ):
                top = hi + 0.2 * max(hi - y_lo, 1e-12)
                if plot not in self._manual:
                    plot.disableAutoRange()
                    self._manual.add(plot)
                plot.setXRange(0, x_top, padding=0)
                plot.setYRange(y_lo, top, padding=0)
                self._ranges[plot] = (x_top, y_lo, top)

    def _run_epochs(self) -> float | None:
        r = self.last_step
        try:
            return float(r["epoch"]) / float(r["step"]) * float(r["total_steps"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None


_SMOOTHED = frozenset((*LOSS_KEYS, "images_per_s"))
SMOOTHING_WINDOW = 20  # steps of the displayed moving average (the stored values stay raw)


def _smoothed(values: list[float], window: int = SMOOTHING_WINDOW) -> list[float]:
    """Trailing moving average over ``window`` points (the first ones over what exists).

    In numpy: recomputed for every curve at every update, a Python loop grew with the run.
    """
    if not values:
        return []
    v = np.asarray(values, dtype=float)
    total = np.cumsum(v)
    total[window:] = total[window:] - total[:-window]
    return (total / np.minimum(np.arange(1, len(v) + 1), window)).tolist()


class TrainingPanel(QWidget):
    """Retrain button, preset choice, live plots, stop / resume, runs list, "Open run folder…".

    Call :meth:`set_project` with the current project (or dataset) folder and the active model.

    Parameters
    ----------
    parent:
        Parent widget.
    overrides:
        TrainConfig fields applied to every run started here (tests use tiny, short runs).
    """

    run_finished = Signal(dict)

    def __init__(self, parent: QWidget | None = None, *, overrides: dict[str, Any] | None = None) -> None:
        super().__init__(parent)
        self.overrides = dict(overrides or {})
        self.source: Path | None = None
        self.model_spec: str | None = None
        self.process: TrainingProcess | None = None  # the running `fusereview train` (its own process)
        self.follower: MetricsFollower | None = None
        self.current_run: Path | None = None

        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        # one click should finish in minutes: the frozen-tower preset is the default, the
        # customer's full recipe (hours on a 24 GB card) is one choice away
        self.preset.setCurrentText("fast")
        self.preset.setToolTip("\n".join(f"{n}: {t}" for n, t in PRESET_HELP.items()))
        # what the chosen preset does and how long it will take here, before anything starts
        self.preset_help = QLabel()
        self.preset_help.setObjectName("preset_help")
        self.preset_help.setWordWrap(True)
        self.retrain_btn = QPushButton("Retrain")
        self.stop_btn = QPushButton("Stop")
        self.resume_btn = QPushButton("Resume")
        self.open_btn = QPushButton("Open run folder…")
        self.log_scale = QCheckBox("log scale")
        self.status = QLabel("no run")
        self.status.setWordWrap(True)
        self.runs = QListWidget()
        self.runs.setToolTip("runs of this project: double-click to plot one")
        self.runs.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.runs.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.plots = RunPlots()

        top = QHBoxLayout()
        top.addWidget(QLabel("preset"))
        for w in (
            self.preset,
            self.retrain_btn,
            self.stop_btn,
            self.resume_btn,
            self.open_btn,
            self.log_scale,
        ):
            top.addWidget(w)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.preset_help)
        layout.addWidget(self.status)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.runs)
        body.addWidget(self.plots)
        body.setStretchFactor(1, 1)
        body.setSizes([220, 1000])
        layout.addWidget(body, 1)

        self.retrain_btn.clicked.connect(self.retrain)
        self.stop_btn.clicked.connect(self.stop)
        self.resume_btn.clicked.connect(self.resume_selected)
        self.open_btn.clicked.connect(self._choose_run_folder)
        self.log_scale.toggled.connect(self.plots.set_log_scale)
        self.preset.currentTextChanged.connect(lambda _: self._explain_preset())
        self.runs.itemActivated.connect(lambda item: self.open_run(Path(item.data(256))))
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._poll_follower)
        self._update_buttons()

    # ------------------------------------------------------------------ state

    def set_project(self, source: str | Path | None, model_spec: str | None) -> None:
        """The project (or dataset) folder to train on and the model to start from."""
        self.source = Path(source) if source else None
        self.model_spec = model_spec
        self.refresh_runs()
        self._update_buttons()
        self._explain_preset()

    def _explain_preset(self) -> None:
        preset = self.preset.currentText()
        self.preset_help.setText(f"{preset}: {PRESET_HELP.get(preset, '')}. {self.estimate(preset)}")

    def estimate(self, preset: str) -> str:
        """How long a run of ``preset`` will take on this machine, from this project's earlier runs.

        The seconds per step measured by the last run of the same preset here, times its number of
        steps; without such a run, says that the time shows after the first measured steps.
        """
        root = self.runs_root()
        for r in list_runs(root) if root else []:
            run = Path(r["path"])
            try:
                config = json.loads((run / "config.json").read_text())
            except (OSError, ValueError):
                continue
            if config.get("preset") != preset:
                continue
            steps = [x for x in read_metrics(run) if x.get("type") == "step" and x.get("step_seconds")]
            total = steps[-1].get("total_steps") if steps else None
            if len(steps) < 3 or not total:
                continue
            per_step = statistics.median(x["step_seconds"] for x in steps[-50:])
            minutes = per_step * total / 60
            return f"About {minutes:.0f} min on this machine ({total} steps at {per_step:.2f} s, measured by {run.name})."
        return "No earlier run of this preset here: the time it will take shows after its first steps."

    def is_training(self) -> bool:
        """Whether a run is going on in this window."""
        return self.process is not None and self.process.is_running()

    def runs_root(self) -> Path | None:
        """Where this project's runs go."""
        if self.source is None:
            return None
        return (
            self.source / "runs"
            if (self.source / "project.db").exists()
            else self.source.parent / f"{self.source.name}-runs"
        )

    def refresh_runs(self) -> None:
        """Fill the runs list from the runs folder."""
        self.runs.clear()
        root = self.runs_root()
        for r in list_runs(root) if root else []:
            best = "" if r["best_map"] is None else f", best AP {r['best_map']:.3f}"
            running = (
                self.is_training() and self.current_run is not None and Path(r["path"]) == self.current_run
            )
            status = "running now" if running else r["status"]
            item = QListWidgetItem(f"{'▶ ' if running else ''}{r['name']} ({status}{best})")
            item.setData(256, r["path"])
            self.runs.addItem(item)

    def _update_buttons(self) -> None:
        busy = self.is_training()
        self.retrain_btn.setEnabled(not busy and self.source is not None and bool(self.model_spec))
        self.resume_btn.setEnabled(not busy and self.source is not None)
        self.stop_btn.setEnabled(busy)
        self.preset.setEnabled(not busy)

    # ------------------------------------------------------------------ actions

    @Slot()
    def retrain(self) -> None:
        """Start a new run with the selected preset on the current project."""
        from fusereview.training.runs import new_run_dir

        if self.source is None or not self.model_spec or self.is_training():
            return
        preset = self.preset.currentText()
        self._start(new_run_dir(self.runs_root(), preset), preset, resume=False)

    @Slot()
    def resume_selected(self) -> None:
        """Resume the selected run (or the one shown) from its last checkpoint."""
        item = self.runs.currentItem()
        run = Path(item.data(256)) if item else self.current_run
        if run is None or self.is_training():
            self.status.setText("select a run to resume")
            return
        if not (run / "checkpoints/last/trainer_state.pt").exists():
            self.status.setText(f"{run.name}: nothing to resume (no last checkpoint)")
            return
        self._start(run, self.preset.currentText(), resume=True)

    def _start(self, run_dir: Path, preset: str, *, resume: bool) -> None:
        """Start ``fusereview train`` in its own process (see ``qt/training_process.py``)."""
        self._stop_following()
        self.plots.clear()
        self.current_run = run_dir
        try:
            command = train_command(
                self.source, self.model_spec or "", preset, run_dir, resume=resume, overrides=self.overrides
            )
        except ValueError as exc:
            self.status.setText(f"training not started: {exc}")
            return
        log = run_dir.parent / f".{run_dir.name}.console.log"  # the run folder is the command's to make
        self.process = TrainingProcess(command, run_dir, log, self)
        self.process.records.connect(self._on_records)
        self.process.finished.connect(self._on_finished)
        self.process.failed.connect(self._on_failed)
        self.process.proc.finished.connect(lambda *_: self._on_process_done())
        self.status.setText(f"{'resuming' if resume else 'starting'} {run_dir.name}…")
        self.process.start()
        self._update_buttons()

    @Slot()
    def stop(self) -> None:
        """Stop the run after its current step (the engine saves ``last``)."""
        if self.process is not None:
            self.process.request_stop()
            self.status.setText("stopping after this step…")

    def open_run(self, run_dir: str | Path) -> None:
        """Plot a run folder, following ``metrics.jsonl`` as it grows (live or finished)."""
        run_dir = Path(run_dir)
        if not (run_dir / "metrics.jsonl").exists() and not (run_dir / "config.json").exists():
            self.status.setText(f"{run_dir}: not a run folder (no metrics.jsonl or config.json)")
            return
        self._stop_following()
        self.plots.clear()
        self.current_run = run_dir
        self.follower = MetricsFollower(run_dir)
        self._poll_follower()
        self.timer.start()

    def _choose_run_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run folder")
        if folder:
            self.open_run(folder)

    def _stop_following(self) -> None:
        self.timer.stop()
        self.follower = None

    @Slot()
    def _poll_follower(self) -> None:
        if self.follower is None:
            return
        recs = self.follower.poll()
        if recs:
            self.plots.add(recs)
            self._show_status()

    # ------------------------------------------------------------------ worker signals

    def _on_records(self, records: list) -> None:
        first = not self.plots.last_step
        self.plots.add(records)
        self._show_status()
        if first and any(r.get("type") == "step" for r in records):
            self.refresh_runs()  # the run folder exists now: list it, marked as running

    def _show_status(self) -> None:
        r = self.plots.last_step
        name = self.current_run.name if self.current_run else ""
        if self.plots.ended:
            e = self.plots.ended
            self.status.setText(f"{name}: {e.get('status')}: {e.get('message', '')}")
            return
        if not r:
            return
        mem = r.get("gpu_mem_gb")
        eta = ""
        sps = r.get("step_seconds")
        cfg_steps = r.get("total_steps")
        if sps and cfg_steps:
            eta = f", about {(cfg_steps - r['step']) * sps / 60:.1f} min left on this machine"
        self.status.setText(
            f"{name}: step {r.get('step')} epoch {r.get('epoch', 0):.2f} loss {self._shown_loss():.4g} "
            f"lr {r.get('lr', 0):.2e} {r.get('images_per_s', 0):.1f} img/s"
            + (f" GPU {mem:.1f} GB" if mem else "")
            + eta
        )

    def _shown_loss(self) -> float:
        """The loss as the plot shows it: the moving average of the last steps.

        One step's loss swings from about 0 (a batch without objects) to hundreds (the SAM3
        recipe's weighted sum): "loss 0.0019" under a curve at 300 contradicted the plot.
        """
        values = self.plots.data["loss"][1][-SMOOTHING_WINDOW:]
        return statistics.fmean(values) if values else float("nan")

    @Slot(dict)
    def _on_finished(self, info: dict) -> None:
        self.status.setText(f"{Path(info['run_dir']).name}: {info['status']}: {info['message']}")
        self.run_finished.emit(info)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(f"training failed: {message}")

    def _on_process_done(self) -> None:
        self.process = None
        self.refresh_runs()
        self._update_buttons()

    # ------------------------------------------------------------------ shutdown

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop a run cleanly (it saves ``last``) and wait for its process; returns whether it ended."""
        self._stop_following()
        if self.process is None:
            return True
        process = self.process
        process.request_stop()
        ended = process.wait(timeout_ms)
        if ended:
            self._on_process_done()
        return ended

    def closeEvent(self, event: Any) -> None:
        """Closing the panel (or its window) stops the run cleanly first."""
        self.shutdown()
        super().closeEvent(event)
