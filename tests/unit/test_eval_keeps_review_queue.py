"""`eval --model` / `compare --model` on a project leave its review queue (pending predictions) alone.

Was: they predicted through the project's cache, and storing a model's predictions makes them
the current ones, so the pending predictions of the active model were replaced by that model's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fusereview.cli import main
from fusereview.core.project import Project
from fusereview.core.synthetic import generate_dataset


def _snapshot(project_dir: Path) -> tuple[list[tuple], int]:
    with Project.open(project_dir) as project:
        preds = [(p.id, p.image_id, p.model, p.state, round(p.score, 6)) for p in project.predictions()]
        cache = project.db.read_one("SELECT COUNT(*) FROM prediction_cache")[0]
    return preds, cache


@pytest.fixture()
def project_with_queue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = generate_dataset(tmp_path / "fuses", images=10, size=96, seed=4)
    project_dir = tmp_path / "proj"
    args = ["predict", str(data), "--model", "tiny", "--threshold", "0.1"]
    assert main([*args, "--project-dir", str(project_dir)]) == 0
    capsys.readouterr()
    preds, _ = _snapshot(project_dir)
    assert any(state == "pending" for *_, state, _s in preds)
    return project_dir


def test_eval_and_compare_with_a_model_do_not_touch_the_pending_predictions(
    project_with_queue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(project_with_queue)
    # another threshold (and for compare, the same model twice): either would have superseded the queue
    assert main(["eval", str(project_with_queue), "--model", "tiny", "--threshold", "0.05"]) == 0
    assert _snapshot(project_with_queue) == before
    code = main(
        ["compare", str(project_with_queue), "--model", "tiny", "--model", "tiny", "--threshold", "0.2"]
    )
    assert code == 0, capsys.readouterr().err
    assert _snapshot(project_with_queue) == before
