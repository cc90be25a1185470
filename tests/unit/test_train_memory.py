"""The peak-memory estimate: attention scores against a measured peak, and the CPU RAM check."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from fusereview.training import memory
from fusereview.training.engine import TrainData, Trainer
from fusereview.training.memory import WillNotFitError, attention_score_bytes, estimate_peak_memory
from fusereview.training.optim import apply_freeze
from fusereview.training.presets import preset_config
from fusereview.training.toydata import toy_samples

SIZE, HEADS = 504, 16  # 36 x 36 = 1296 tokens: a 107 MB float32 score matrix, far above RSS noise

# One global ViT block, forward + backward, with fused attention (sdpa) and with eager; a thread
# samples the process's resident memory every half millisecond, and the growth of its peak over
# the level before the call is printed for each.
_MEASURE = textwrap.dedent(
    f"""
    import json, os, threading, time, torch
    from transformers import Sam3Model
    from fusereview.models.tiny import tiny_config
    torch.set_num_threads(1)
    torch.manual_seed(0)
    page = os.sysconf("SC_PAGE_SIZE")
    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page
    def peak_growth(fn):
        base = rss()
        peak = [base]
        done = threading.Event()
        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.0005)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            fn()
        finally:
            done.set()
            watcher.join()
        return max(peak[0], rss()) - base
    out = {{}}
    for impl in ("sdpa", "eager"):
        cfg = tiny_config(image_size={SIZE}, hidden=64, heads={HEADS}, vit_layers=1)
        cfg.vision_config.backbone_config._attn_implementation = impl
        block = Sam3Model(cfg).vision_encoder.backbone.layers[0].train()
        assert block.window_size == 0 and block.attention.config._attn_implementation == impl
        x = torch.randn(1, {SIZE // 14}, {SIZE // 14}, 64, requires_grad=True)
        out[impl] = peak_growth(lambda: block(x).sum().backward())
    print(json.dumps(out))
    """
)


def _small_model(impl: str) -> torch.nn.Module:
    from transformers import Sam3Model

    from fusereview.models.tiny import tiny_config

    cfg = tiny_config(image_size=SIZE, hidden=64, heads=HEADS, vit_layers=1)
    cfg.vision_config.backbone_config._attn_implementation = impl
    with torch.device("meta"):
        return Sam3Model(cfg)


def test_global_attention_term_matches_a_measured_peak() -> None:
    proc = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    scores, _ = attention_score_bytes(_small_model("sdpa").vision_encoder.backbone.config, SIZE, 4)
    assert scores == 1296 * 1296 * HEADS * 4
    # fused attention never holds the score matrix (measured: 0.19 of one, all of it the block's other
    # activations); eager holds about three copies at its peak (measured: 3.03 at 504 and 756 px)
    assert measured["sdpa"] < 0.3 * scores, measured
    extra = measured["eager"] - measured["sdpa"]
    cfg = preset_config("customer", batch_size=1, activation_checkpointing=True, bf16=False)
    est = {}
    for impl in ("sdpa", "eager"):
        model = _small_model(impl)
        apply_freeze(model, "full")
        est[impl] = estimate_peak_memory(model, cfg, SIZE, device_type="cpu").activations * 2**30
    predicted = est["eager"] - est["sdpa"]
    assert 0.8 < predicted / extra < 1.25, (predicted, extra, measured)


def test_full_size_global_blocks_count_whole_when_the_scores_are_materialised() -> None:
    from transformers import Sam3Config, Sam3Model

    with torch.device("meta"):
        model = Sam3Model(Sam3Config())
    vit = model.vision_encoder.backbone.config
    scores, _ = attention_score_bytes(vit, 1008, 2)
    assert scores == pytest.approx(0.86e9, rel=0.01)  # per global block per image, bf16
    apply_freeze(model, "full")
    cfg = preset_config("customer", activation_checkpointing=False)
    fused = estimate_peak_memory(model, cfg, 1008)
    vit._attn_implementation = "eager"
    try:
        eager = estimate_peak_memory(model, cfg, 1008)
    finally:
        vit._attn_implementation = "sdpa"
    # each of the 4 global blocks keeps its scores for each of the 2 images (not 1/32 of one)
    assert (eager.activations - fused.activations) * 2**30 >= 4 * 2 * scores


def test_the_cpu_estimate_counts_float32_activations() -> None:
    model = _small_model("sdpa")
    apply_freeze(model, "full")
    cfg = preset_config("customer")  # bf16 None: on CUDA only
    cuda = estimate_peak_memory(model, cfg, SIZE, device_type="cuda")
    cpu = estimate_peak_memory(model, cfg, SIZE, device_type="cpu")
    assert cpu.activations == pytest.approx(2 * cuda.activations)


@pytest.fixture
def data():
    return TrainData(toy_samples(2, size=112, seed=0), [], [(1, "fuse neutrals")])


def test_a_cpu_run_that_cannot_fit_in_ram_is_refused_before_anything_is_written(data, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "ram_gb", lambda: (0.25, 0.2))
    cfg = preset_config("tiny", image_size=112, epochs=1, max_steps=1, device="cpu")
    # the setup alone: what train() then does with a failure before the run folder exists is the
    # end-of-run hooks' business
    with pytest.raises(WillNotFitError, match=r"exceeds this machine's RAM 0\.2 GB"):
        Trainer(data, "tiny", cfg, tmp_path / "run")._setup()
    assert not (tmp_path / "run").exists()


def test_a_cpu_run_short_of_free_ram_starts_with_a_warning(data, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(memory, "ram_gb", lambda: (512.0, 0.0))
    monkeypatch.setattr(memory, "_own_rss_gb", lambda: 0.0)
    cfg = preset_config("tiny", image_size=112, epochs=1, max_steps=1, device="cpu")
    result = Trainer(data, "tiny", cfg, tmp_path / "run").train()
    assert result.status == "stopped", result.message  # max_steps reached: it ran
    notices = json.loads((tmp_path / "run" / "config.json").read_text())["notices"]
    assert any("RAM free now" in n for n in notices)
    assert "RAM free now" in capfd.readouterr().err
