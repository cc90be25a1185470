"""The training panel: live plots while `fusereview train` runs in its own process, a clean stop, following a run folder."""

from __future__ import annotations

import json
import os
import sys

import pytest

pytest.importorskip("pyqtgraph")

from fusereview.qt.panels.training import TrainingPanel
from fusereview.qt.workers import BACKGROUND_NICE
from fusereview.training.toydata import write_toy_coco

TINY = {"image_size": 112, "epochs": 50, "batch_size": 4, "eval_every": 1, "dropout": 0.0}


def test_plots_points_while_training_and_the_process_gone_after_close(qtbot, tmp_path):
    ds = write_toy_coco(tmp_path / "toy", train=6, valid=2)
    panel = TrainingPanel(overrides=TINY)
    qtbot.addWidget(panel)
    panel.set_project(ds, "tiny")
    panel.preset.setCurrentText("tiny")
    assert panel.retrain_btn.isEnabled()
    panel.retrain_btn.click()
    assert panel.is_training()
    process = panel.process
    assert process.command[-8:-6] == ["--preset", "tiny"] or "--preset" in process.command
    qtbot.waitUntil(lambda: panel.plots.points("loss") >= 2, timeout=120_000)
    if sys.platform.startswith("linux"):  # the window keeps its CPU priority, the run runs below it
        assert process.lowered
        pid = int(process.proc.processId())
        assert os.getpriority(os.PRIO_PROCESS, pid) >= max(
            os.getpriority(os.PRIO_PROCESS, 0), BACKGROUND_NICE
        )
    assert panel.plots.points("loss_giou") >= 2 and panel.plots.points("lr") >= 2
    assert panel.is_training(), "50 epochs cannot be over yet"
    panel.close()  # must stop the run (SIGTERM: a saved, resumable stop) and wait for the process
    assert panel.process is None and not process.is_running()
    runs = [p for p in (tmp_path / "toy-runs").iterdir() if p.is_dir()]  # beside: the console log
    assert len(runs) == 1
    end = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()][-1]
    assert end["type"] == "end" and end["status"] == "stopped"
    assert (runs[0] / "checkpoints/last/trainer_state.pt").exists()


def test_open_run_folder_follows_a_growing_file(qtbot, tmp_path):
    run = tmp_path / "remote-run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    lines = [
        {
            "type": "step",
            "step": i,
            "epoch": i / 4,
            "loss": 10.0 / i,
            "lr": 1e-4,
            "images_per_s": 3.0,
            "gpu_mem_gb": None,
        }
        for i in range(1, 4)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.open_run(run)
    assert panel.plots.points("loss") == 3
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(
            json.dumps(
                {
                    "type": "val",
                    "step": 4,
                    "epoch": 1,
                    "bbox": {"AP": 0.1, "AP50": 0.3, "AP75": 0.05},
                    "segm": {},
                }
            )
            + "\n"
        )
    qtbot.waitUntil(lambda: panel.plots.points("val_AP50") == 1, timeout=5000)
    panel.close()
    assert not panel.timer.isActive()


def test_displayed_loss_is_a_trailing_moving_average():
    from fusereview.qt.panels.training import _smoothed

    assert _smoothed([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]
    assert _smoothed([], window=5) == []


def test_one_click_retrain_defaults_to_the_fast_preset(qtbot):
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    assert panel.preset.currentText() == "fast"
    assert not panel.retrain_btn.isEnabled()  # no project yet: nothing to train on


def test_the_run_is_the_train_command_with_the_panels_overrides(tmp_path):
    from fusereview.qt.training_process import train_command

    cmd = train_command(tmp_path, "tiny", "fast", tmp_path / "run", resume=False, overrides={"epochs": 3})
    assert (
        cmd[-9:]
        == [
            "train",
            str(tmp_path),
            "--model",
            "tiny",
            "--preset",
            "fast",
            "--run-dir",
            str(tmp_path / "run"),
            "--epochs",
            "3",
        ][-9:]
    )
    assert train_command(tmp_path, "tiny", "fast", tmp_path / "run", resume=True, overrides={})[-3:] == [
        "train",
        "--resume",
        str(tmp_path / "run"),
    ]
    with pytest.raises(ValueError, match="no `fusereview train` option"):
        train_command(tmp_path, "tiny", "fast", tmp_path / "run", resume=False, overrides={"freeze": "x"})


def test_the_status_line_states_the_loss_the_plot_shows(qtbot, tmp_path):
    """Regression: the status gave the last step's loss ("loss 0.0019", a batch without objects)
    under a curve at about 300 (the moving average the plot draws)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    losses = [300.0, 310.0, 290.0, 305.0, 0.0019]
    lines = [
        {"type": "step", "step": i + 1, "epoch": (i + 1) / 4, "loss": v, "lr": 1e-4, "images_per_s": 3.0}
        for i, v in enumerate(losses)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.open_run(run)
    panel.plots.flush()
    shown = panel.plots.curves["loss"].getData()[1][-1]
    assert shown == pytest.approx(sum(losses) / len(losses))
    assert f"loss {shown:.4g} " in panel.status.text(), panel.status.text()
