"""A finished run replaces the project's model only when its val mAP is at least the current one's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fusereview.demo.project import demo_model_dir, prepare_demo_project
from fusereview.training.engine import RunResult, load_train_data, propose_active_model


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("promote")
    project = prepare_demo_project(tmp / "demo")
    best = tmp / "run" / "checkpoints" / "best"
    shutil.copytree(demo_model_dir(), best)  # stands for a run's best export
    yield project, load_train_data(project), best
    project.close()


def _result(best: Path, best_map: float) -> RunResult:
    return RunResult(
        status="finished",
        message="finished",
        run_dir=best.parent.parent,
        step=10,
        best_epoch=5,
        best_map=best_map,
        best_path=best,
        last_path=None,
        last_validation=None,
    )


def test_without_an_active_model_the_starting_model_is_measured_and_kept_when_better(demo) -> None:
    project, data, best = demo
    assert project.active_model() is None
    worse = _result(best, 0.01)  # the shipped model measures about 0.3 on this valid split
    assert propose_active_model(project, worse, data, start_spec=str(demo_model_dir())) is False
    assert "kept the active model" in worse.message and project.active_model() is None


def test_a_run_at_least_as_good_becomes_the_active_model_then_a_worse_one_does_not(demo) -> None:
    project, data, best = demo
    good = _result(best, 0.99)
    assert propose_active_model(project, good, data, start_spec=str(demo_model_dir())) is True
    active = project.active_model()
    assert active["spec"] == str(best) and active["metrics"]["bbox_AP"] == 0.99
    worse = _result(best, 0.5)  # now compared with the stored 0.99 of the same split
    assert propose_active_model(project, worse, data, start_spec=str(demo_model_dir())) is False
    assert project.active_model()["metrics"]["bbox_AP"] == 0.99


def test_nothing_to_propose_without_a_validated_best(demo) -> None:
    project, data, best = demo
    result = _result(best, 0.5)
    result.best_map = None
    assert propose_active_model(project, result, data) is None
