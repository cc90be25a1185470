"""Plot legends that sit beside the axes, never over the curves (the training and evaluation plots)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg


def outside_legend(plot: Any) -> Any:
    """A legend to the right of the plot's axes, never over its curves."""
    item = plot.getPlotItem()
    legend = pg.LegendItem(offset=None, verSpacing=-4)
    item.layout.addItem(legend, 2, 3)  # row 2 is the view box's row; column 3 is right of it
    item.layout.setColumnStretchFactor(3, 0)
    return legend
