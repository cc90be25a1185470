"""The main window on a real X server through Qt's xcb plugin (every other GUI test runs offscreen).

An Xvfb server is started for the test; the window is opened in a subprocess with
``QT_QPA_PLATFORM=xcb`` on the demo project, reviewed with key presses, and the X screen is
grabbed. The test fails — never skips — when Xvfb is missing or Qt cannot load the xcb plugin
(a missing system library): that is exactly what a user on a fresh machine would hit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from fusereview.qt.canvas.render import STATE_COLORS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture
def xserver(tmp_path: Path):
    """A fresh Xvfb display, stopped after the test."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail(
            "Xvfb is not installed: `bash packaging/bootstrap.sh test` installs it (apt package xvfb)"
        )
    for number in range(91, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    else:
        pytest.fail("no free X display number between :91 and :139")
    proc = subprocess.Popen(
        [xvfb, f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 15
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            proc.kill()
            pytest.fail(f"Xvfb :{number} did not start: {err[-500:]}")
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _pixels(path: Path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return arr.reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def _near(pixels: np.ndarray, xy: list[int], rgb: tuple[int, int, int], tol: int = 14) -> bool:
    x, y = xy
    patch = pixels[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4].reshape(-1, 3).astype(int)
    return bool((np.abs(patch - np.array(rgb)).max(axis=1) <= tol).any())


def test_main_window_opens_and_reviews_on_a_real_x_display(xserver: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update({"DISPLAY": xserver, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(REPO)})
    shot = tmp_path / "real-window.png"
    out = subprocess.run(
        [sys.executable, str(HERE / "real_window_app.py"), str(tmp_path / "demo"), str(shot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (
        "the main window did not open through Qt's xcb plugin (a missing system library? run "
        f"`bash packaging/qt_system_libs.sh .venv/bin/python`):\n{out.stderr[-3000:]}"
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["platform"] == "xcb"
    assert report["moved_with_n"], "N did not move to the next pending prediction"
    assert report["message"], "accepting said nothing in the status bar"
    assert report["window"] == [1366, 768], f"the window grew by itself to {report['window']}"
    pixels = _pixels(shot)
    assert pixels.shape[:2] == (1000, 1600)
    drawn = [
        o
        for o in report["overlays"]
        if o["state"] in STATE_COLORS and _near(pixels, o["left_edge"], STATE_COLORS[o["state"]])
    ]
    assert report["overlays"], "the canvas showed no prediction or label"
    # every overlay's box edge is on screen in its state's colour (allow a few hidden under labels)
    assert len(drawn) >= 0.7 * len(report["overlays"]), (len(drawn), report["overlays"])
    assert any(o["state"] == "pending" for o in drawn) and any(o["state"] == "gt" for o in drawn)
