"""Plot legends that sit beside the axes, never over the curves (the training and evaluation plots)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSizePolicy


def outside_legend(plot: Any) -> Any:
    """A legend to the right of the plot's axes, never over its curves."""
    item = plot.getPlotItem()
    legend = pg.LegendItem(offset=None, verSpacing=-4)
    item.layout.addItem(legend, 2, 3)  # row 2 is the view box's row; column 3 is right of it
    item.layout.setColumnStretchFactor(3, 0)
    # its own height, at the top: stretched to the plot's height its lines spread apart and the
    # line samples drifted away from their names
    legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
    item.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop)
    return legend
