"""The report's figures, drawn with matplotlib on its Agg canvas (no display, no pyplot, no Qt).

Figures are built with the object-oriented API (``matplotlib.figure.Figure`` and the Agg canvas)
so that nothing selects a GUI backend: a report is written on a headless GPU server as on a
laptop, and the GUI process, if it ever writes one, keeps its own Qt. Every curve of a figure
gets its own colour (:func:`palette`): nine loss components once shared eight colours.
"""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusereview.core.files import write_bytes_atomic

# Tableau's ten, then four more that stay apart from them (black and grey are kept for the
# total loss, whose raw and smoothed lines are drawn in those).
_BASE_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#bcbd22", "#17becf", "#7f7f7f", "#000080", "#b8860b", "#008080", "#ff00ff",
]  # fmt: skip
TOTAL_RAW = "#c8c8c8"
TOTAL_SMOOTH = "#000000"
DPI = 100


@dataclass
class Series:
    """One curve; ``None`` (or NaN) values leave a gap."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    markers: bool = False


def palette(n: int) -> list[str]:
    """``n`` distinct colours: the base palette, then evenly spaced hues for any beyond it."""
    colors = list(_BASE_COLORS[:n])
    extra = n - len(colors)
    for k in range(extra):
        r, g, b = colorsys.hsv_to_rgb((k / extra + 0.05) % 1.0, 0.75, 0.65)
        colors.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colors


def _array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def smooth(values: Sequence[float | None], window: int) -> np.ndarray:
    """Centred moving average over ``window`` points, gaps (None/NaN) skipped."""
    y = _array(values)
    if window <= 1 or y.size == 0:
        return y
    ok = np.isfinite(y)
    kernel = np.ones(window)
    total = np.convolve(np.where(ok, y, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[~ok] = np.nan
    return out


def _new(width: float, height: float, ncols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)
    return fig, list(axes)


def line_figure(
    series: Sequence[Series],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    size: tuple[float, float] = (8.0, 4.6),
) -> Any:
    """A line plot with one distinct colour per series; returns the ``Figure``."""
    fig, (ax,) = _new(*size)
    for s, color in zip(series, palette(len(series)), strict=True):
        ax.plot(
            list(s.xs),
            _array(s.ys),
            color=color,
            linewidth=1.8,
            marker="o" if s.markers else None,
            markersize=4,
            label=s.label,
        )
    if xlim:
        ax.set_xlim(*xlim)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if any(s.label for s in series):
        ax.legend(fontsize=8, loc="best")
    return fig


def loss_figure(steps: Sequence[float], total: Sequence[float | None], components: Sequence[Series]) -> Any:
    """Total loss (raw, grey; smoothed, black) beside each component (smoothed, its own colour).

    Components differ by orders of magnitude (the auxiliary loss sums six decoder layers), so
    their panel is logarithmic when they span more than a factor of 50.
    """
    fig, (left, right) = _new(12.0, 4.6, ncols=2)
    window = max(1, len(steps) // 40)
    mean = f"{window}-step mean" if window > 1 else "each step"
    if window > 1:
        left.plot(steps, _array(total), color=TOTAL_RAW, linewidth=0.8, label="loss (each step)")
    left.plot(steps, smooth(total, window), color=TOTAL_SMOOTH, linewidth=2.0, label=f"loss ({mean})")
    left.set_title("Training loss")
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.legend(fontsize=8, loc="upper right")
    values = []
    for s, color in zip(components, palette(len(components)), strict=True):
        y = smooth(s.ys, window)
        values.extend(v for v in y if math.isfinite(v) and v > 0)
        right.plot(list(s.xs), y, color=color, linewidth=1.6, label=s.label)
    if values and max(values) / min(values) > 50:
        right.set_yscale("log")
    right.set_title(f"Loss components ({mean})")
    right.set_xlabel("step")
    if components:
        right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def validation_figure(
    epochs: Sequence[float],
    series: Sequence[Series],
    *,
    best_epoch: float | None = None,
    band: tuple[float, float, str] | None = None,
) -> Any:
    """Validation metrics by epoch; the best epoch marked, and optionally a shaded interval."""
    fig = line_figure(
        series, title="Validation metrics by epoch", xlabel="epoch", ylabel="AP", ylim=(0.0, 1.0)
    )
    ax = fig.axes[0]
    if band is not None:
        low, high, label = band
        ax.axhspan(max(0.0, low), min(1.0, high), color="#1f77b4", alpha=0.12, label=label)
    if best_epoch is not None:
        ax.axvline(
            best_epoch, color="#555555", linestyle="--", linewidth=1.0, label=f"best epoch ({best_epoch:g})"
        )
    if epochs and all(float(e).is_integer() for e in epochs) and len(epochs) <= 30:
        ax.set_xticks(sorted({int(e) for e in epochs}))
    ax.legend(fontsize=8, loc="best")
    return fig


def pr_figure(curves: Sequence[Series], best: Sequence[tuple[float, float, str]] = ()) -> Any:
    """Precision-recall curves, with the best-F1 point of each (``(recall, precision, label)``)."""
    fig = line_figure(
        curves,
        title="Precision-recall (every detection, by score)",
        xlabel="recall",
        ylabel="precision",
        xlim=(0.0, 1.0),
        ylim=(0.0, 1.02),
    )
    ax = fig.axes[0]
    for (r, p, label), color in zip(best, palette(len(curves)), strict=False):
        ax.scatter(
            [r], [p], s=60, marker="*", color=color, edgecolors="black", linewidths=0.6, zorder=3, label=label
        )
    if best:
        ax.legend(fontsize=8, loc="lower left")
    return fig


def curve_colors(fig: Any) -> list[tuple[str, str]]:
    """``(label, colour)`` of every labelled line of a figure (what a test checks for clashes)."""
    from matplotlib.colors import to_hex

    return [
        (line.get_label(), to_hex(line.get_color()))
        for ax in fig.axes
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    ]


def save_figure(fig: Any, out: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically (with the user's umask, see :mod:`fusereview.core.files`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return write_bytes_atomic(buf.getvalue(), Path(out))
