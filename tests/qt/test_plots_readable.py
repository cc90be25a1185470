"""Plots a person can read: legends beside the axes naming every curve, axes labelled, no GPU plot on the CPU."""

from __future__ import annotations

import pytest

pg = pytest.importorskip("pyqtgraph")


def _legend_names(legend) -> list[str]:
    return [label.text for _sample, label in legend.items]


def _legend_compact(legend) -> None:
    """Each line's sample beside its name, the lines one under the other (not spread over the plot)."""
    for sample, label in legend.items:
        s, t = sample.sceneBoundingRect(), label.sceneBoundingRect()
        assert t.top() - 4 <= s.center().y() <= t.bottom() + 4, (label.text, s, t)
    assert legend.sceneBoundingRect().height() <= 30 * len(legend.items) + 10


def _legend_clear_of_the_curves(plot, legend) -> None:
    view = plot.getPlotItem().getViewBox()
    inside = view.sceneBoundingRect().intersected(legend.sceneBoundingRect())
    assert min(inside.width(), inside.height()) <= 1.0, "the legend lies over the curves"  # edges may touch


def _labelled(plot) -> None:
    item = plot.getPlotItem()
    for side in ("left", "bottom"):
        assert item.getAxis(side).labelText, f"{side} axis has no label"


def test_training_plots(qtbot) -> None:
    from fusereview.qt.panels.training import RunPlots

    plots = RunPlots()
    qtbot.addWidget(plots)
    plots.resize(1100, 600)
    plots.show()
    qtbot.waitExposed(plots)
    plots.add(
        [
            {"type": "step", "step": s, "epoch": s / 10, "loss": 2.0 / s, "lr": 1e-4, "images_per_s": 5.0}
            for s in range(1, 30)
        ]
        + [{"type": "val", "epoch": 1.0, "bbox": {"AP": 0.1, "AP50": 0.3, "AP75": 0.05}}]
    )
    # plots are redrawn one per event-loop turn: after a few turns every curve shows all its points
    qtbot.waitUntil(lambda: not plots._dirty, timeout=2000)
    for key in ("loss", "lr", "images_per_s", "val_AP50"):
        xs, _ys = plots.curves[key].getData()
        assert xs is not None and len(xs) == plots.points(key), key
    for plot in (plots.loss_plot, plots.val_plot, plots.lr_plot, plots.speed_plot):
        _labelled(plot)
    _legend_clear_of_the_curves(plots.loss_plot, plots.loss_legend)
    _legend_clear_of_the_curves(plots.val_plot, plots.val_legend)
    _legend_compact(plots.loss_legend)
    _legend_compact(plots.val_legend)
    names = _legend_names(plots.val_legend)
    assert len(names) == len([k for k in plots.curves if k.startswith("val_")]) == 3
    assert all("IoU" in n for n in names), names  # each line says which AP it is
    assert "total" in _legend_names(plots.loss_legend)
    assert not plots.mem_plot.isVisible(), "no GPU-memory plot when training on the CPU"


def test_precision_recall_plot(qtbot, window) -> None:
    window.show_workspace("evaluate")
    qtbot.waitUntil(lambda: window.evaluation_panel is not None, timeout=10_000)
    plot = window.evaluation_panel.pr_plot
    qtbot.waitExposed(plot)
    _labelled(plot)
    legend = plot.getPlotItem().layout.itemAt(2, 3)  # beside the view box (row 2, column 3)
    assert isinstance(legend, pg.LegendItem)
    assert _legend_names(legend) == ["precision-recall", "best F1"]
    _legend_compact(legend)
    _legend_clear_of_the_curves(plot, legend)
