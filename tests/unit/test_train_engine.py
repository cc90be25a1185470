"""The training loop end to end on a tiny model and toy data: run folder, hooks, stop, resume, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fusereview.training import engine as engine_mod
from fusereview.training.engine import TrainData, Trainer
from fusereview.training.hooks import HookBase
from fusereview.training.losses import COMPONENTS
from fusereview.training.modelio import load_model
from fusereview.training.presets import preset_config
from fusereview.training.runs import METRIC_NAMES, MetricsFollower, read_metrics
from fusereview.training.toydata import toy_samples
from fusereview.training.validation import predict_samples


@pytest.fixture(scope="module")
def data() -> TrainData:
    return TrainData(
        toy_samples(6, size=112, seed=0),
        toy_samples(2, size=112, seed=1, first_id=50),
        [(1, "fuse neutrals")],
    )


def cfg(**kw):
    base = {
        "image_size": 112,
        "epochs": 2,
        "batch_size": 4,
        "eval_every": 1,
        "dropout": 0.0,
        "negatives_per_image": 0.25,
        "lr": 1e-3,
    }
    return preset_config("tiny", **{**base, **kw})


class Recorder(HookBase):
    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.stop_at = stop_at

    def before_train(self, t):
        self.calls.append("before_train")

    def before_step(self, t):
        self.calls.append("before_step")

    def after_step(self, t):
        self.calls.append("after_step")
        if self.stop_at is not None and t.step == self.stop_at:
            t.request_stop()

    def after_epoch(self, t):
        self.calls.append("after_epoch")

    def after_validation(self, t):
        self.calls.append("after_validation")

    def after_train(self, t):
        self.calls.append(f"after_train:{t.result.status}")


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    rec = Recorder()
    run_dir = tmp_path_factory.mktemp("runs") / "a"
    trainer = Trainer(data, "tiny", cfg(), run_dir, hooks=[rec])
    return trainer, trainer.train(), rec


def test_run_folder_metrics_and_hook_order(finished_run):
    trainer, result, rec = finished_run
    assert result.status == "finished", result.message
    run = Path(result.run_dir)
    config = json.loads((run / "config.json").read_text())
    assert config["model_spec"] == "tiny" and config["epochs"] == 2 and "started_at" in config
    env = json.loads((run / "env.json").read_text())
    assert {"python", "torch", "transformers", "device", "gpu_name", "gpu_memory_gb"} <= set(env)
    recs = read_metrics(run)
    steps = [r for r in recs if r["type"] == "step"]
    assert len(steps) == trainer.total_steps == 2 * trainer.steps_per_epoch
    for r in steps:
        for k in ("loss", "lr", "images_per_s", *COMPONENTS):
            assert isinstance(r[k], float) and r[k] == r[k] and abs(r[k]) < float("inf"), k
    vals = [r for r in recs if r["type"] == "val"]
    assert [v["epoch"] for v in vals] == [1, 2]
    assert set(vals[0]["bbox"]) == set(METRIC_NAMES) == set(vals[0]["segm"])
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "finished"
    assert (run / "checkpoints/last/trainer_state.pt").exists() and (
        run / "checkpoints/best/model.safetensors"
    ).exists()
    n = trainer.steps_per_epoch
    epoch_calls = ["before_step", "after_step"] * n + ["after_epoch", "after_validation"]
    assert rec.calls == ["before_train", *epoch_calls, *epoch_calls, "after_train:finished"]


def test_export_reload_gives_identical_predictions(finished_run, data):
    trainer, result, _ = finished_run
    reloaded = load_model(str(result.last_path))
    a = predict_samples(
        trainer.loaded, data.valid, data.categories, device=torch.device("cpu"), with_masks=False
    )
    b = predict_samples(reloaded, data.valid, data.categories, device=torch.device("cpu"), with_masks=False)
    assert [r["bbox"] for r in a] == [r["bbox"] for r in b]
    assert [r["score"] for r in a] == [r["score"] for r in b]


def test_stop_within_one_step_then_resume_matches_uninterrupted(finished_run, data, tmp_path):
    _, full, _ = finished_run
    run_dir = tmp_path / "b"
    rec = Recorder(stop_at=3)
    stopped = Trainer(data, "tiny", cfg(), run_dir, hooks=[rec]).train()
    assert stopped.status == "stopped" and stopped.step == 3
    assert rec.calls.count("after_step") == 3
    resumed = Trainer(data, "tiny", cfg(), run_dir, resume=True).train()
    assert resumed.status == "finished", resumed.message
    a = [r for r in read_metrics(full.run_dir) if r["type"] in ("step", "val")]
    b = [r for r in read_metrics(run_dir) if r["type"] in ("step", "val")]
    assert [r["type"] for r in a] == [r["type"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        if ra["type"] == "step":
            assert ra["step"] == rb["step"]
            assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5, abs=1e-6)
            assert ra["lr"] == pytest.approx(rb["lr"])
        else:
            assert ra["bbox"] == pytest.approx(rb["bbox"], abs=1e-6)


def test_best_is_kept_when_later_epochs_get_worse(data, tmp_path, monkeypatch):
    aps = iter([0.5, 0.2, 0.1])

    def fake_validate(*a, **k):
        ap = next(aps)
        m = {n: ap for n in METRIC_NAMES}
        return {"bbox": m, "segm": dict(m)}

    monkeypatch.setattr(engine_mod, "validate", fake_validate)
    result = Trainer(data, "tiny", cfg(epochs=3, batch_size=8), tmp_path / "c").train()
    assert result.best_epoch == 1 and result.best_map == 0.5
    meta = json.loads((result.best_path / "fusereview.json").read_text())
    assert meta["epoch"] == 1 and meta["metrics"]["bbox"]["AP"] == 0.5
    assert load_model(str(result.best_path)).image_size == 112


def test_out_of_memory_stops_with_a_suggestion(data, tmp_path, monkeypatch):
    trainer = Trainer(data, "tiny", cfg(epochs=1), tmp_path / "d")
    real = trainer._forward_loss

    def boom(batch):
        if trainer.step == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(batch)

    monkeypatch.setattr(trainer, "_forward_loss", boom)
    result = trainer.train()
    assert result.status == "failed"
    assert "out of memory at step 2" in result.message and "try --batch-size 2" in result.message
    assert read_metrics(tmp_path / "d")[-1]["status"] == "failed"


def test_nan_loss_stops_naming_step_and_component(data, tmp_path):
    trainer = Trainer(data, "tiny", cfg(epochs=1), tmp_path / "e")
    original = trainer.__class__._forward_loss

    def poisoned(self, batch):
        loss, comps = original(self, batch)
        if self.step == 1:
            comps["loss_giou"] = comps["loss_giou"] * float("nan")
        return loss, comps

    trainer._forward_loss = poisoned.__get__(trainer)
    result = trainer.train()
    assert result.status == "failed"
    assert "step 2" in result.message and "loss_giou" in result.message


def test_disk_full_while_saving_keeps_previous_checkpoint(data, tmp_path, monkeypatch):
    run_dir = tmp_path / "f"
    first = Trainer(data, "tiny", cfg(epochs=1, batch_size=8), run_dir).train()
    assert first.status == "finished"
    before = (run_dir / "checkpoints/last/model.safetensors").read_bytes()

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    trainer = Trainer(data, "tiny", cfg(epochs=2, batch_size=8), run_dir / "g")
    monkeypatch.setattr(engine_mod.torch, "save", full)
    result = trainer.train()
    assert (
        result.status == "failed"
        and "disk full: " in result.message
        and "MB needed at" in result.message
        and "previous checkpoint is intact" in result.message
    )
    assert (run_dir / "checkpoints/last/model.safetensors").read_bytes() == before
    assert not any(p.name.startswith(".last") for p in (run_dir / "g/checkpoints").iterdir())


def test_metrics_follower_reads_growing_file(tmp_path):
    f = MetricsFollower(tmp_path)
    assert f.poll() == []
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"type": "step", "step": 1}\n{"type": "st')
    assert [r["step"] for r in f.poll()] == [1]
    with open(p, "a") as fh:
        fh.write('ep", "step": 2}\n')
    assert [r["step"] for r in f.poll()] == [2]
