"""Kill the GUI process in the middle of a review: every acknowledged decision is there on reopening.

The child process runs the real window offscreen, reviews by key presses and prints one line per
decision once the key press has returned (that is what "acknowledged" means: the reviewer saw the
next item). The parent SIGKILLs it mid-review, then reopens the project.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fusereview.core.coco import load_dataset
from fusereview.core.project import Project
from fusereview.core.records import ReviewState
from fusereview.core.synthetic import generate_dataset

CHILD = textwrap.dedent(
    """
    import os, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from fusereview.qt.app import make_app
    from fusereview.qt.main_window import MainWindow
    from fusereview.core.project import Project

    app = make_app()
    w = MainWindow(QSettings(sys.argv[2], QSettings.Format.IniFormat))
    w.open_project(Project.open(sys.argv[1]))
    w.show()
    app.processEvents()
    c = w.controller
    print("READY", flush=True)
    i = 0
    while c.queue_model.rowCount():
        pid = c.selected[1]
        key = Qt.Key.Key_A if i % 3 else Qt.Key.Key_R
        QTest.keyClick(w.view, key)
        app.processEvents()
        print("ACK", pid, "accepted" if key == Qt.Key.Key_A else "rejected", flush=True)
        i += 1
        time.sleep(0.02)
    print("DONE", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_mid_review_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "qt"))
    from gui_samples import store_fake_predictions  # the GUI tests' deterministic predictions

    ds = generate_dataset(tmp_path / "ds", images=8, size=192, seed=5)
    with Project.create(tmp_path / "proj", load_dataset(ds)) as project:
        total = store_fake_predictions(project)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "proj"), str(tmp_path / "settings.ini")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    acked: dict[int, str] = {}
    kill_after = total // 2
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if parts and parts[0] == "ACK":
                acked[int(parts[1])] = parts[2]
                if len(acked) >= kill_after:
                    break
            assert time.monotonic() < deadline, "the child did not review in time"
        proc.send_signal(signal.SIGKILL)  # no chance to flush or close anything
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) == kill_after
    with Project.open(tmp_path / "proj") as project:
        for pid, state in acked.items():
            pred = project.prediction(pid)
            assert pred.state == ReviewState(state), f"decision on prediction {pid} was lost"
            if state == "accepted":
                assert project.annotation(pred.annotation_id).source == "review"
