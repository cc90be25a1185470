"""The report of a real (tiny, one-epoch) training run made by fusereview.training on the CPU."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

pytest.importorskip("torch")


@pytest.mark.slow
def test_report_of_a_tiny_training_run(tmp_path: Path) -> None:
    from fusereview.cli import main
    from fusereview.core.synthetic import generate_dataset
    from fusereview.evaluation.report import write_report
    from fusereview.evaluation.run_folder import read_evaluation_file
    from fusereview.training.engine import Trainer
    from fusereview.training.presets import preset_config

    dataset = generate_dataset(tmp_path / "ds", images=6, size=64, seed=0)
    config = preset_config("tiny", epochs=1, batch_size=2, eval_every=1, device="cpu")
    result = Trainer(dataset, "tiny", config, tmp_path / "run").train()
    assert result.status == "finished", result.message

    # `report --evaluate` runs checkpoints/best on the test split first (eval/test.json), then reports.
    assert main(["report", str(tmp_path / "run"), "--evaluate", "--device", "cpu"]) == 0
    assert (tmp_path / "run" / "eval" / "test.json").exists()
    report = write_report(tmp_path / "run")
    text = report.markdown.read_text()
    assert "## Errors on the test split" in text and "test (best)" in text  # test metrics column
    assert "Status: **finished**" in text
    assert "Best epoch: **1**" in text
    assert "checkpoints/last/trainer_state.pt" in text and "checkpoints/best/" in text
    assert "| valid |" in text  # dataset statistics read from the dataset the config names
    names = {p.name for p in report.images}
    assert {"loss.png", "val_metrics.png"} <= names
    saved = read_evaluation_file(tmp_path / "run" / "eval" / "test.json").evaluations["bbox"]
    assert ("pr_curve.png" in names) == (saved.n_detections > 0)  # a PR curve needs detections
    for p in report.images:
        img = cv2.imread(str(p))
        assert img is not None and float(img.std()) > 5.0
    assert any("validation split has" in r for r in report.recommendations)
