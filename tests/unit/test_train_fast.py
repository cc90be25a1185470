"""The fast preset (frozen towers, feature cache, partial exports) and the memory check before a run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from fusereview.training.engine import TrainData, Trainer
from fusereview.training.hooks import HookBase
from fusereview.training.memory import WillNotFitError, check_fits, estimate_peak_memory
from fusereview.training.modelio import load_model, save_export
from fusereview.training.optim import apply_freeze
from fusereview.training.presets import LIGHTER, preset_config
from fusereview.training.toydata import toy_samples


class StopAt(HookBase):
    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, t) -> None:
        if t.step == self.step:
            t.request_stop()


def test_fast_preset_caches_features_and_a_resumed_run_exports_on_top_of_its_starting_model(tmp_path) -> None:
    base = tmp_path / "base"
    save_export(load_model("tiny", image_size=112), base)  # a model on disk, as a user's would be
    data = TrainData(
        toy_samples(6, size=112, seed=0),
        toy_samples(2, size=112, seed=1, first_id=50),
        [(1, "fuse neutrals")],
    )
    cfg = preset_config("fast", epochs=2, batch_size=4, eval_every=1, lr=1e-3, negatives_per_image=0.25)
    assert cfg.freeze == "freeze_vision_text" and cfg.feature_cache and cfg.image_size is None
    run = tmp_path / "run"
    first = Trainer(data, str(base), cfg, run, hooks=[StopAt(1)])
    assert first.train().status == "stopped"
    # `last` holds only what trains, on top of the named base (not a second copy of the towers)
    last_meta = json.loads((run / "checkpoints" / "last" / "fusereview.json").read_text())
    assert last_meta["base"]["spec"] == str(base.resolve())
    with safe_open(str(run / "checkpoints" / "last" / "model.safetensors"), "pt") as fh:
        saved = set(fh.keys())
    trained = {n for n, p in first.core_model.named_parameters() if p.requires_grad}
    assert saved == trained and not any(k.startswith(("vision_encoder.", "text_encoder.")) for k in saved)
    resumed = Trainer(data, str(base), cfg, run, resume=True)
    result = resumed.train()
    assert result.status == "finished", result.message
    assert resumed.use_cache and len(resumed._feature_cache) == 6  # each image's features computed once
    meta = json.loads((result.best_path / "fusereview.json").read_text())
    # the frozen towers are not copied: the export names the model the run started from, never `last`
    assert meta["base"]["spec"] == str(base.resolve())
    assert meta["base"]["fingerprint"] == load_model(str(base)).fingerprint
    best = load_model(str(result.best_path))  # base + trained parameters, every parameter loaded
    assert best.image_size == 112


def test_a_frozen_tower_run_resumes_exactly_from_its_partial_last_checkpoint(tmp_path) -> None:
    base = tmp_path / "base"
    save_export(load_model("tiny", image_size=112, seed=1), base)
    data = TrainData(toy_samples(4, size=112, seed=0), [], [(1, "fuse neutrals")])
    cfg = preset_config("fast", epochs=2, batch_size=2, lr=1e-3, negatives_per_image=0.0)
    whole = Trainer(data, str(base), cfg, tmp_path / "whole")
    assert whole.train().status == "finished"
    Trainer(data, str(base), cfg, tmp_path / "split", hooks=[StopAt(2)]).train()
    resumed = Trainer(data, str(base), cfg, tmp_path / "split", resume=True)
    assert resumed.train().status == "finished"
    a, b = whole.core_model.state_dict(), resumed.core_model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _full_size_model() -> torch.nn.Module:
    from transformers import Sam3Config, Sam3Model

    with torch.device("meta"):  # shapes only: no memory, no weights
        return Sam3Model(Sam3Config())


def test_memory_estimate_of_the_full_model_and_the_refusal_that_suggests_a_lighter_preset() -> None:
    model = _full_size_model()
    customer = preset_config("customer")
    apply_freeze(model, customer.freeze)
    customer_estimate = estimate_peak_memory(model, customer, 1008)
    with_ckpt = customer_estimate.total
    without = estimate_peak_memory(
        model, preset_config("customer", activation_checkpointing=False), 1008
    ).total
    # measured on an H200 (raw model, toy loss, batch 2, 1008 px): 15.2 GiB checkpointed, 27.6 GiB not
    assert 12 <= with_ckpt <= 24 and without > with_ckpt + 5, (with_ckpt, without)
    fast = preset_config("fast")
    apply_freeze(model, fast.freeze)
    fast_total = estimate_peak_memory(model, fast, 1008).total
    assert fast_total < with_ckpt / 2
    with pytest.raises(WillNotFitError, match="try --preset fast"):
        check_fits(customer_estimate, 12.0, "customer", LIGHTER["customer"])
    check_fits(estimate_peak_memory(model, fast, 1008), 24.0, "fast", LIGHTER["fast"])  # fits: no error
