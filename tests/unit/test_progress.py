"""Progress: a live bar on a terminal, plain lines every few seconds when piped (was: endless \\r lines)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fusereview.core.progress import Progress
from fusereview.core.synthetic import generate_dataset

ROOT = Path(__file__).resolve().parents[2]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    out = FakeTerminal()
    bar = Progress("predict", stream=out)
    for i in range(6):
        bar(i, 5)
        time.sleep(0.11)  # past the live redraw interval
    text = out.getvalue()
    assert "\r" in text and "5/5" in text


def test_in_a_log_every_update_is_a_whole_line_and_few_of_them() -> None:
    out = io.StringIO()
    bar = Progress("predict", stream=out, log_interval=0.2)
    start = time.monotonic()
    for i in range(51):
        bar(i, 50)
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert all(line.startswith("predict") for line in lines)
    assert lines[-1].count("50/50") == 1
    # the first line, one per interval at most, the final one
    assert 2 <= len(lines) <= elapsed / 0.2 + 3


def test_messages_between_updates_are_lines_of_their_own() -> None:
    out = io.StringIO()
    bar = Progress("train", unit="step", stream=out, log_interval=100)
    bar(1, 4)
    bar.write("epoch 1: loss 0.5")
    bar(4, 4)
    lines = out.getvalue().splitlines()
    assert "epoch 1: loss 0.5" in lines and "\r" not in out.getvalue()
    assert "4/4" in lines[-1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FUSEREVIEW_PROGRESS_INTERVAL": "0.5"}
    return subprocess.run(
        [sys.executable, "-m", "fusereview", *args],
        cwd=cwd,
        env=env,
        capture_output=True,  # stderr is a pipe, as in `... 2> log` or CI
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_predict_and_train_piped_write_lines_not_carriage_returns(tmp_path: Path) -> None:
    data = generate_dataset(tmp_path / "data", images=8, size=96, seed=3)
    proc = _run(["predict", str(data), "--model", "tiny", "--threshold", "0.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    bars = [line for line in proc.stderr.splitlines() if line.startswith("predict")]
    assert bars and "8/8" in bars[-1]

    from fusereview.training.toydata import write_toy_coco

    toy = write_toy_coco(tmp_path / "toy", train=6, valid=2)
    options = "--model tiny --preset tiny --image-size 112 --batch-size 2 --epochs 2".split()
    proc = _run(["train", str(toy), *options, "--run-dir", str(tmp_path / "run")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    steps = [line for line in lines if line.startswith("train")]
    assert steps and "/" in steps[-1] and "loss" in steps[-1]
    assert any(line.startswith("epoch 1: loss") for line in lines)
