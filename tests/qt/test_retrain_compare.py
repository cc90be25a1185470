"""Retrain from the main window: when the run ends, its best model is compared with the current one."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyqtgraph")


def test_finished_run_shows_up_in_the_evaluation_panel_against_the_current_model(qtbot, window) -> None:
    window.model_spec = "tiny"  # the model the run starts from (random init, seeded)
    window.show_workspace("train")
    qtbot.waitUntil(lambda: window.training_panel is not None, timeout=10_000)
    panel = window.training_panel
    panel.overrides = {"image_size": 112, "epochs": 2, "batch_size": 2, "eval_every": 1, "dropout": 0.0}
    panel.preset.setCurrentText("tiny")
    assert panel.retrain_btn.isEnabled()
    panel.retrain_btn.click()
    qtbot.waitUntil(
        lambda: window.evaluation_panel is not None and window.evaluation_panel.comparison is not None,
        timeout=240_000,
    )
    ev = window.evaluation_panel
    comparison = ev.comparison
    assert comparison.label_a.startswith("current model") and comparison.label_b.startswith("run ")
    run_name = comparison.label_b.removeprefix("run ")
    assert (Path(panel.runs_root()) / run_name / "checkpoints" / "best" / "model.safetensors").is_file()
    # every metric row is filled, with a delta column
    assert ev.compare_metrics.item(0, 2) is not None and ev.compare_metrics.item(0, 2).text()
    assert sum(comparison.status_counts().values()) == len(ev.project.images(ev.split))
    assert not panel.is_training()
