"""Training speed and memory benchmark.

Three numbers (the goals are GPU figures, for the full SAM3 model with ``--full``):

1. engine overhead: the engine's step time against the raw model forward + backward on the same
   batch, in the same process (ratio raw / engine, goal >= 0.85);
2. full fine-tuning with activation checkpointing at 1008 px, batch 2: images/s and peak memory
   (goal: peak <= 16 GB);
3. the ``fast`` preset (vision + text frozen, feature cache): 50 epochs x 24 images, wall time
   including model load (goal: < 60 s).

Without ``--full`` it runs the tiny model on the CPU at small sizes and prints CPU numbers (peak
memory is then the process's peak RSS). Examples::

    python tests/benchmarks/bench_train.py                       # CPU smoke run, tiny model
    python tests/benchmarks/bench_train.py --full --model /models/sam3   # GPU, real model, 1008 px
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _peak_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _data(n: int, size: int) -> Any:
    from fusereview.training.engine import TrainData
    from fusereview.training.toydata import toy_samples

    return TrainData(toy_samples(n, size=size, seed=0), [], [(1, "fuse neutrals")])


def _trainer(spec: str, data: Any, work: Path, name: str, **cfg: Any) -> Any:
    from fusereview.training.engine import Trainer
    from fusereview.training.presets import preset_config

    preset = cfg.pop("preset", "customer")
    t = Trainer(data, spec, preset_config(preset, **cfg), work / name)
    t._setup()  # the benchmark drives steps itself
    return t


def bench_overhead(
    spec: str, image_size: int | None, batch: int, steps: int, device: str, work: Path, ckpt: bool
) -> dict[str, float]:
    """Engine step vs raw forward+backward on the same batch."""
    from fusereview.training.data import collate
    from fusereview.training.modelio import tokenize

    t = _trainer(
        spec,
        _data(max(8, batch * 2), image_size or 1008),
        work,
        "overhead",
        image_size=image_size,
        batch_size=batch,
        negatives_per_image=0,
        augment="none",
        activation_checkpointing=ckpt,
        device=device,
        epochs=1,
    )
    dev = t.device
    idx = list(range(batch))
    batch_data = collate([t.dataset[i] for i in idx])
    ids, am = tokenize(t.loaded.tokenizer, batch_data["prompts"])
    pixels, ids, am = batch_data["pixels"].to(dev), ids.to(dev), am.to(dev)

    def raw() -> None:
        with torch.autocast(dev.type, dtype=t.amp_dtype, enabled=t.amp_dtype is not None):
            out = t.model(pixel_values=pixels, input_ids=ids, attention_mask=am)
            loss = (
                out.pred_boxes.float().mean()
                + out.pred_logits.float().mean()
                + out.pred_masks.float().mean()
                + out.presence_logits.float().mean()
            )
        loss.backward()
        t.optimizer.zero_grad(set_to_none=True)

    def engine() -> None:
        t.run_step(idx)

    def timed(fn: Any) -> float:
        fn()  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - t0) / steps

    # Interleave to share the machine's noise between both.
    r1, e1 = timed(raw), timed(engine)
    r2, e2 = timed(raw), timed(engine)
    raw_s, eng_s = (r1 + r2) / 2, (e1 + e2) / 2
    return {"raw_step_s": raw_s, "engine_step_s": eng_s, "ratio_raw_over_engine": raw_s / eng_s}


def bench_full(
    spec: str, image_size: int | None, batch: int, steps: int, device: str, work: Path
) -> dict[str, float]:
    """Full fine-tuning with activation checkpointing: images/s and peak memory."""
    t = _trainer(
        spec,
        _data(batch * (steps + 1), image_size or 1008),
        work,
        "full",
        image_size=image_size,
        batch_size=batch,
        negatives_per_image=0,
        activation_checkpointing=True,
        device=device,
        epochs=1,
    )
    if t.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(t.device)
    t.run_step(list(range(batch)))  # warm-up
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        t.run_step(list(range(s * batch, (s + 1) * batch)))
    dt = time.perf_counter() - t0
    from fusereview.training.memory import estimate_peak_memory

    est = estimate_peak_memory(t.core_model, t.config, t.loaded.image_size).total
    return {"images_per_s": batch * steps / dt, "peak_gb": _peak_gb(t.device), "estimated_peak_gb": est}


def bench_fast(
    spec: str, image_size: int | None, images: int, epochs: int, device: str, work: Path
) -> dict[str, float]:
    """The fast preset end to end (model load included)."""
    from fusereview.training.engine import Trainer
    from fusereview.training.presets import preset_config

    data = _data(images, image_size or 1008)
    t0 = time.perf_counter()
    cfg = preset_config("fast", epochs=epochs, image_size=image_size, device=device, negatives_per_image=0)
    result = Trainer(data, spec, cfg, work / "fast").train()
    wall = time.perf_counter() - t0
    if result.status != "finished":
        raise SystemExit(f"fast preset run {result.status}: {result.message}")
    return {"epochs": epochs, "images": images, "wall_s": wall, "steps": result.step}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--full", action="store_true", help="GPU figures: real model (--model), 1008 px, 50 epochs"
    )
    p.add_argument("--model", default="tiny")
    p.add_argument("--device", default=None)
    p.add_argument("--image-size", type=int, default=None, help="tiny model resolution (default 224 on CPU)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--fast-epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.full:
        if args.model == "tiny":
            p.error("--full needs --model (a SAM3 checkpoint)")
        size, steps, fast_epochs = None, args.steps or 10, args.fast_epochs or 50
    else:
        size, steps, fast_epochs = args.image_size or 224, args.steps or 3, args.fast_epochs or 3
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(
            f"device {device}, model {args.model}, image size {size or 'model'}, torch threads {torch.get_num_threads()}",
            flush=True,
        )
        o = bench_overhead(args.model, size, 2, steps, device, work, ckpt=False)
        print(
            f"engine overhead: raw fwd+bwd {o['raw_step_s']:.3f}s, engine step {o['engine_step_s']:.3f}s, ratio {o['ratio_raw_over_engine']:.2f} (goal >= 0.85)",
            flush=True,
        )
        f = bench_full(args.model, size, 2, steps, device, work)
        print(
            f"full fine-tuning + activation checkpointing, batch 2: {f['images_per_s']:.2f} images/s, peak {f['peak_gb']:.2f} GB ({'GPU' if device.startswith('cuda') else 'CPU RSS'}), estimate {f['estimated_peak_gb']:.2f} GB (goal <= 16 GB)",
            flush=True,
        )
        s = bench_fast(args.model, size, 24, fast_epochs, device, work)
        print(
            f"fast preset: {s['epochs']} epochs x {s['images']} images in {s['wall_s']:.1f}s incl. model load (goal: 50 epochs < 60 s on the GPU)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
