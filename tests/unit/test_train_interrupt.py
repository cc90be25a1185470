"""Interrupted and resumed runs keep their work, and a refused --resume changes nothing.

Was: Ctrl-C saved nothing since the last epoch and printed "failed: KeyboardInterrupt:"; a
relative --resume path gave a relative active-model path and a second runs row with preset
"customer" while the first stayed "created"; a corrupt config.json / trainer_state.pt gave a
traceback (torch's advice to load with weights_only=False included) and a refused resume
appended a "failed" end record to a finished run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fusereview.cli import main
from fusereview.core.coco import load_dataset
from fusereview.core.project import Project
from fusereview.training.engine import Trainer
from fusereview.training.hooks import HookBase
from fusereview.training.presets import preset_config
from fusereview.training.toydata import write_toy_coco

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = "--model tiny --preset tiny --image-size 112 --batch-size 2 --eval-every 1000".split()


def _project(tmp_path: Path) -> Path:
    toy = write_toy_coco(tmp_path / "toy", train=6, valid=2)
    Project.create(tmp_path / "proj", load_dataset(toy)).close()
    return tmp_path / "proj"


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _runs(project_dir: Path) -> list[dict]:
    with Project.open(project_dir) as project:
        return project.runs()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _interrupt(project_dir: Path, run_dir: Path, sig: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Start a long tiny run, send ``sig`` once it has logged two steps, wait for the end."""
    cmd = [sys.executable, "-m", "fusereview", "train", str(project_dir), *OPTIONS, "--epochs", "200"]
    proc = subprocess.Popen(
        [*cmd, "--run-dir", str(run_dir)],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().count('"type": "step"') >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_sigint_saves_the_step_prints_the_resume_command_and_resume_continues_the_same_row(
    tmp_path: Path,
) -> None:
    project_dir = _project(tmp_path)
    run_dir = tmp_path / "proj" / "runs" / "interrupted"
    done = _interrupt(project_dir, run_dir, signal.SIGINT, tmp_path)
    assert done.returncode == 130, done.stderr
    assert "KeyboardInterrupt" not in done.stdout + done.stderr and "failed" not in done.stdout
    resume = f"fusereview train --resume {run_dir.resolve()}"
    assert f"resume with: {resume}" in done.stdout
    recs = _records(run_dir)
    steps = [r["step"] for r in recs if r["type"] == "step"]
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "stopped"
    state = torch.load(run_dir / "checkpoints/last/trainer_state.pt", weights_only=False)
    # the step running when the signal came was finished, logged and saved
    assert state["state"]["step"] == steps[-1] >= 2
    (row,) = _runs(project_dir)
    assert row["status"] == "stopped" and row["run_dir"] == str(run_dir.resolve())
    assert row["config"]["preset"] == "tiny"

    # resume with a relative path, from another folder: the same row, absolute paths, preset kept
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rel = os.path.relpath(run_dir, elsewhere)
    cmd = [sys.executable, "-m", "fusereview", "train", "--resume", rel]
    # the remaining 199 epochs would take minutes: the test resumes a copy cut to 2 epochs
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["epochs"] = 2
    (run_dir / "config.json").write_text(json.dumps(cfg))
    resumed = subprocess.run(cmd, cwd=elsewhere, env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    recs = _records(run_dir)
    steps_after = [r["step"] for r in recs if r["type"] == "step"]
    assert steps_after[: len(steps)] == steps and steps_after == list(range(1, len(steps_after) + 1))
    assert recs[-1]["status"] == "finished"
    (row,) = _runs(project_dir)
    assert row["status"] == "finished" and row["config"]["preset"] == "tiny"
    assert Path(row["best_model_path"]).is_absolute() and Path(row["best_model_path"]).is_dir()
    with Project.open(project_dir) as project:
        active = project.active_model()
    if active is not None:  # promoted when at least as good as the starting model
        assert Path(active["spec"]).is_absolute()


@pytest.mark.slow
def test_sigterm_stops_the_same_way(tmp_path: Path) -> None:
    project_dir = _project(tmp_path)
    run_dir = tmp_path / "run"
    done = _interrupt(project_dir, run_dir, signal.SIGTERM, tmp_path)
    assert done.returncode == 130, done.stderr
    assert "SIGTERM: stopped after step" in done.stdout and "resume with: fusereview train" in done.stdout
    assert (run_dir / "checkpoints/last/trainer_state.pt").is_file()


class StopAt(HookBase):
    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, t) -> None:  # type: ignore[no-untyped-def]
        if t.step == self.step:
            t.request_stop()


def _stopped_run(tmp_path: Path, *, finish: bool = False) -> tuple[Path, Path]:
    project_dir = _project(tmp_path)
    run_dir = project_dir / "runs" / "r"
    cfg = preset_config("tiny", image_size=112, epochs=1, batch_size=2, eval_every=1000)
    with Project.open(project_dir) as project:
        hooks = [] if finish else [StopAt(1)]
        result = Trainer(project, "tiny", cfg, run_dir, hooks=hooks, project=project).train()
        project.add_run(run_dir, {"preset": "tiny", "model": "tiny", "resume": False})
    assert result.status == ("finished" if finish else "stopped"), result.message
    return project_dir, run_dir


def _refused(run_dir: Path, project_dir: Path, capsys: pytest.CaptureFixture[str], *words: str) -> str:
    before = (run_dir / "metrics.jsonl").read_bytes()
    rows = _runs(project_dir)
    assert main(["train", "--resume", str(run_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err
    assert "weights_only" not in err and "Traceback" not in err
    assert (run_dir / "metrics.jsonl").read_bytes() == before  # no "failed" end record
    assert _runs(project_dir) == rows
    return err


def test_resuming_a_finished_run_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project_dir, run_dir = _stopped_run(tmp_path, finish=True)
    _refused(run_dir, project_dir, capsys, "the run finished", "nothing to resume")


def test_corrupt_config_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir, run_dir = _stopped_run(tmp_path)
    (run_dir / "config.json").write_text('{"preset": "tiny", ')
    _refused(run_dir, project_dir, capsys, "config.json", "not valid JSON")


def test_config_json_with_a_bad_field_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir, run_dir = _stopped_run(tmp_path)
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["epochs"] = 0
    (run_dir / "config.json").write_text(json.dumps(cfg))
    _refused(run_dir, project_dir, capsys, "config.json", "epochs")


def test_damaged_trainer_state_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir, run_dir = _stopped_run(tmp_path)
    state = run_dir / "checkpoints/last/trainer_state.pt"
    state.write_bytes(state.read_bytes()[:200])  # a cut copy
    _refused(run_dir, project_dir, capsys, "trainer_state.pt", "damaged")


class NotAState:
    """Something a trainer state never holds: loading it would need weights_only=False."""


def test_trainer_state_with_foreign_objects_is_refused_without_the_weights_only_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project_dir, run_dir = _stopped_run(tmp_path)
    state = run_dir / "checkpoints/last/trainer_state.pt"
    torch.save({"optimizer": NotAState(), "scheduler": {}, "state": {}, "rng": {}}, state)
    _refused(run_dir, project_dir, capsys, "trainer_state.pt", "not loaded")
