"""`fusereview demo` end to end, as the README's first command runs it (offscreen, in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2

from fusereview.core.project import Project
from fusereview.core.records import ReviewState


def _demo(workdir: Path, shot: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fusereview", "demo", "--workdir", str(workdir), "--screenshot", str(shot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_opens_with_predictions_in_the_queue_and_a_second_start_keeps_decisions(tmp_path: Path) -> None:
    first = _demo(tmp_path / "w", tmp_path / "first.png")
    assert first.returncode == 0, first.stderr[-2000:]
    image = cv2.imread(str(tmp_path / "first.png"))
    assert image is not None and image.shape[0] >= 600 and image.std() > 20
    with Project.open(tmp_path / "w" / "project") as project:
        pending = [p for p in project.predictions() if p.state == ReviewState.PENDING]
        assert len(pending) >= 35, "the shipped model finds the fuse neutrals: the queue is full"
        models = {p.model for p in pending}
        assert len(models) == 1 and next(iter(models)).startswith("export:")
        kept = pending[0].id
        project.decide(kept, ReviewState.ACCEPTED, by="tester")
    second = _demo(tmp_path / "w", tmp_path / "second.png")
    assert second.returncode == 0, second.stderr[-2000:]
    with Project.open(tmp_path / "w" / "project") as project:
        kept_pred = project.prediction(kept)
        assert kept_pred.state == ReviewState.ACCEPTED  # reopened, decision kept
        # every demo image is labelled: a prediction of a labelled fuse records agreement with it
        if kept_pred.annotation_id is not None:
            assert project.annotation(kept_pred.annotation_id) is not None
        else:
            assert project.annotation(kept_pred.agrees_with) is not None


def test_demo_without_a_display_says_how_to_run_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run(
        [sys.executable, "-m", "fusereview", "demo", "--workdir", str(tmp_path / "w")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "xvfb-run" in out.stderr and "Traceback" not in out.stderr
