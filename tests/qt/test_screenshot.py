"""`fusereview gui PROJECT --screenshot FILE`: renders the window after loading, then exits."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PySide6.QtGui import QImage

from fusereview.commands import gui as gui_command
from fusereview.core.errors import FusereviewError
from fusereview.qt.app import run_gui
from fusereview.qt.canvas.render import SELECTED_COLOR


def _pixels(path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return arr.reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3)


def test_screenshot_of_a_project(qapp, project, settings, tmp_path) -> None:
    out = tmp_path / "shots" / "review.png"
    assert run_gui(str(project.root), None, str(out), settings=settings, size=(1000, 700)) == 0
    px = _pixels(out)
    assert px.shape == (700, 1000, 3)
    # the selected prediction's yellow box is on it
    yellow = (np.abs(px.astype(int) - np.array(SELECTED_COLOR)).max(axis=2) <= 10).sum()
    assert yellow > 50


def test_screenshot_of_the_start_page(qapp, settings, tmp_path) -> None:
    out = tmp_path / "start.png"
    assert run_gui(None, None, str(out), settings=settings, size=(800, 600)) == 0
    assert _pixels(out).shape == (600, 800, 3)


def test_gui_command_arguments_and_errors(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    gui_command.add_arguments(parser)
    args = parser.parse_args(["somewhere", "--model", "tiny", "--screenshot", "x.png", "--size", "640x480"])
    assert (args.path, args.model, args.screenshot, args.size) == ("somewhere", "tiny", "x.png", (640, 480))
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "big"])
    # a path that is neither a project nor a dataset: one clear error, no window
    args = parser.parse_args([str(tmp_path / "missing"), "--screenshot", str(tmp_path / "x.png")])
    with pytest.raises(FusereviewError):
        gui_command.run(args)
    assert not (tmp_path / "x.png").exists()
