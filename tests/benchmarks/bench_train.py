"""Training speed and memory benchmark.

Three numbers (the goals are GPU figures, for the full SAM3 model with ``--full``):

1. engine overhead: the engine's step time against the raw model forward + backward on the same
   batch, in the same process (ratio raw / engine, goal >= 0.85);
2. full fine-tuning with activation checkpointing at 1008 px, batch 2: images/s and peak memory
   (goal: peak <= 16 GB);
3. the ``fast`` preset (vision + text frozen, feature cache): 50 epochs x 24 images, wall time
   including model load (goal: < 60 s).

Without ``--full`` it runs the tiny model on the CPU at small sizes and prints CPU numbers (peak
memory is then the process's peak RSS).

``--recipes`` instead compares the two loss recipes (``legacy`` and ``sam3``, docs/LOSSES.md) side
by side from the same seed, on toy data with the tiny model (1 torch thread, so that the numbers
repeat): validation AP50 after N steps and the expected calibration error (ECE) of the detections,
(a) trained from scratch and (b) fine-tuned from a model pretrained with the ``sam3`` recipe (the
situation of a customer fine-tuning the real SAM3 checkpoint). Examples::

    python tests/benchmarks/bench_train.py                       # CPU smoke run, tiny model
    python tests/benchmarks/bench_train.py --recipes             # loss recipes, CPU, a few minutes
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


ECE_MIN_SCORE = 0.05
ECE_BINS = 10


def _binned_gap(scores: torch.Tensor, target: torch.Tensor) -> float:
    """Detection-weighted mean over equal-width score bins of ``|mean score - mean target|``."""
    bins = (scores * ECE_BINS).long().clamp(max=ECE_BINS - 1)
    return sum(
        (bins == b).sum().item() * abs(scores[bins == b].mean().item() - target[bins == b].mean().item())
        for b in range(ECE_BINS)
        if (bins == b).any()
    ) / len(scores)


def calibration_error(
    results: list[dict[str, Any]], gt: dict[str, Any], *, min_score: float = ECE_MIN_SCORE
) -> dict[str, float]:
    """Calibration of the detections scoring at least ``min_score``: ``ECE``, ``IoU_ECE`` and ``n``.

    ``ECE``: each detection is correct when it is the highest-scoring one to reach an unclaimed
    object of its image and category at IoU >= 0.5 (greedy, in score order, as COCO matches at
    AP50); the scores fall in ``ECE_BINS`` equal-width bins, and ECE is the detection-weighted mean
    over bins of ``|mean score - fraction correct|``: 0 when a score of 0.7 is right 70 % of the
    time. ``IoU_ECE`` is the same with the detection's best IoU with any object in place of
    "correct": 0 when a score says how well the box fits (what SAM3's IoU-aware loss trains for).
    """
    from torchvision.ops import box_iou

    objects: dict[tuple[int, int], list[list[float]]] = {}
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        objects.setdefault((a["image_id"], a["category_id"]), []).append([x, y, x + w, y + h])
    claimed: dict[tuple[int, int], set[int]] = {}
    scores, correct, best = [], [], []
    for r in sorted(results, key=lambda r: -r["score"]):
        if r["score"] < min_score:
            break
        key = (r["image_id"], r["category_id"])
        x, y, w, h = r["bbox"]
        hit, top = False, 0.0
        if objects.get(key):
            ious = box_iou(torch.tensor([[x, y, x + w, y + h]]), torch.tensor(objects[key]))[0]
            top = ious.max().item()
            taken = claimed.setdefault(key, set())
            for j in ious.argsort(descending=True).tolist():
                if ious[j] >= 0.5 and j not in taken:
                    taken.add(j)
                    hit = True
                    break
        scores.append(r["score"])
        correct.append(float(hit))
        best.append(top)
    if not scores:
        return {"ECE": float("nan"), "IoU_ECE": float("nan"), "n": 0}
    s = torch.tensor(scores)
    return {
        "ECE": _binned_gap(s, torch.tensor(correct)),
        "IoU_ECE": _binned_gap(s, torch.tensor(best)),
        "n": len(scores),
    }


def _recipe_run(
    spec: str, recipe: str, train: Any, valid: Any, steps: int, work: Path, name: str, seed: int = 0
) -> dict[str, Any]:
    """Train ``steps`` steps with ``recipe`` (same seed, data order and schedule for every recipe)."""
    from fusereview.training.engine import TrainData, Trainer
    from fusereview.training.modelio import load_model
    from fusereview.training.presets import preset_config
    from fusereview.training.validation import predict_samples

    cats = [(1, "fuse neutrals")]
    data = TrainData(train, valid, cats)
    per_epoch = -(-round(len(train) * 1.25) // 4)  # items (negatives 0.25 per image) / batch 4
    epochs = max(1, round(steps / per_epoch))
    cfg = preset_config(
        "tiny",
        image_size=112,
        epochs=epochs,
        batch_size=4,
        lr=2e-3 if spec == "tiny" else 5e-4,
        eval_every=epochs,
        augment="none",
        dropout=0.0,
        negatives_per_image=0.25,
        warmup_epochs=2 if spec == "tiny" else 0.5,
        seed=seed,
        loss_recipe=recipe,
    )
    t0 = time.perf_counter()
    result = Trainer(data, spec, cfg, work / name).train()
    if result.status != "finished":
        raise SystemExit(f"{name}: {result.status}: {result.message}")
    loaded = load_model(str(result.last_path))
    dets = predict_samples(loaded, valid, cats, device=torch.device("cpu"), with_masks=False)
    return {
        "AP50": result.last_validation["bbox"]["AP50"],
        **calibration_error(dets, data.valid_gt),
        "steps": result.step,
        "seconds": time.perf_counter() - t0,
        "last": result.last_path,
    }


def _start_metrics(spec: str, valid: Any) -> dict[str, Any]:
    """AP50 and ECE of a saved model before fine-tuning."""
    from fusereview.training.engine import TrainData
    from fusereview.training.modelio import load_model
    from fusereview.training.validation import predict_samples, validate

    cats = [(1, "fuse neutrals")]
    data = TrainData([], valid, cats)
    loaded = load_model(spec)
    dev = torch.device("cpu")
    ap50 = validate(loaded, valid, cats, data.valid_gt, device=dev)["bbox"]["AP50"]
    dets = predict_samples(loaded, valid, cats, device=dev, with_masks=False)
    return {"AP50": ap50, **calibration_error(dets, data.valid_gt)}


def bench_recipes(
    steps: int, finetune_steps: int, work: Path, seeds: tuple[int, ...] = (0,), n_valid: int = 32
) -> list[tuple[str, str, int, dict[str, Any]]]:
    """The loss-recipe comparison: (scenario, recipe, seed, numbers) rows.

    Both recipes of a seed see the same initial weights, data order and schedule. The validation
    split (``n_valid`` images) is larger than the learning test's 8 so that AP50 moves less from
    image to image.
    """
    from fusereview.training.toydata import toy_samples

    torch.set_num_threads(1)  # float sums depend on the thread count: 1 thread repeats exactly
    train, valid = toy_samples(48, size=112, seed=0), toy_samples(n_valid, size=112, seed=1, first_id=100)
    ft_train = toy_samples(24, size=112, seed=3, first_id=200)
    ft_valid = toy_samples(n_valid, size=112, seed=4, first_id=300)
    rows = []
    for seed in seeds:
        scratch = {
            rec: _recipe_run("tiny", rec, train, valid, steps, work, f"scratch-{rec}-{seed}", seed)
            for rec in ("legacy", "sam3")
        }
        rows += [("from scratch", rec, seed, r) for rec, r in scratch.items()]
        # the stand-in for a checkpoint trained with SAM3's loss, fine-tuned on new images of the task
        pretrained = str(scratch["sam3"]["last"])
        rows.append(("fine-tune (start)", "-", seed, _start_metrics(pretrained, ft_valid)))
        for rec in ("legacy", "sam3"):
            r = _recipe_run(
                pretrained, rec, ft_train, ft_valid, finetune_steps, work, f"ft-{rec}-{seed}", seed
            )
            rows.append(("fine-tune", rec, seed, r))
    return rows


def print_recipes(rows: list[tuple[str, str, int, dict[str, Any]]]) -> None:
    """The comparison as a Markdown table."""
    print(
        f"| scenario | recipe | seed | steps | val AP50 | ECE | IoU-ECE | detections (score >= {ECE_MIN_SCORE}) | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario, recipe, seed, r in rows:
        ap = "n/a" if r["AP50"] is None else f"{r['AP50']:.3f}"
        steps = r.get("steps", "-")
        secs = f"{r['seconds']:.0f}" if "seconds" in r else "-"
        print(
            f"| {scenario} | {recipe} | {seed} | {steps} | {ap} | {r['ECE']:.3f} | {r['IoU_ECE']:.3f} | {r['n']} | {secs} |",
            flush=True,
        )


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
    p.add_argument("--recipes", action="store_true", help="compare the loss recipes (AP50, ECE) instead")
    p.add_argument("--finetune-steps", type=int, default=None, help="with --recipes (default 150)")
    p.add_argument("--seeds", default="0", help="with --recipes: training seeds, comma-separated (default 0)")
    args = p.parse_args(argv)
    if args.recipes:
        seeds = tuple(int(x) for x in args.seeds.split(","))
        with tempfile.TemporaryDirectory() as tmp:
            print_recipes(bench_recipes(args.steps or 300, args.finetune_steps or 150, Path(tmp), seeds))
        return 0
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
