"""Build the demo model: a tiny SAM3-architecture model trained by fusereview's own engine.

Run ``python -m fusereview.demo.build_model`` (about 23 minutes on 2 CPU cores). It

1. draws a few hundred synthetic fuse-box photos (``fusereview.core.synthetic.render_image``, a seed
   of its own) to train on, and the demo dataset (``generate_dataset(images=35, size=512, seed=0)``)
   whose valid split validates and whose test split scores the result;
2. trains the tiny model (224 px, from scratch, spread queries) with the ``tiny`` preset, its learning
   rate a cosine over a wall-clock budget (``--minutes``), since a shared machine's speed varies;
3. writes ``resources/demo_model/`` (export format d, bfloat16: a few MB), its training metrics
   (``training_metrics.jsonl``, ``training_config.json``) and ``metrics.json`` with the test split's
   AP50 and the spread of scores, measured by reloading the shipped files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fusereview.training.hooks import HookBase

DEMO_DATASET = {"images": 35, "size": 512, "seed": 0}
TRAIN_SEED = 2026
DEFAULT_OUT = Path(__file__).resolve().parent.parent.parent / "resources" / "demo_model"


def render_samples(n: int, seed: int, size: int = 512) -> list[Any]:
    """``n`` synthetic images with their objects as training samples."""
    from fusereview.core.synthetic import render_image
    from fusereview.training.data import Sample

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img, objs = render_image(rng, size)
        anns = [{"category_id": 1, "bbox": list(o["bbox"]), "segmentation": o["segmentation"]} for o in objs]
        out.append(Sample(img, anns, i + 1, f"train-{i:04d}.jpg"))
        if (i + 1) % 25 == 0:
            print(f"\rrendering training images {i + 1}/{n}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def demo_splits(folder: Path) -> dict[str, tuple[list[Any], list[tuple[int, str]], dict]]:
    """The demo dataset's splits as samples (generated into ``folder``)."""
    from fusereview.core.synthetic import generate_dataset
    from fusereview.training.data import find_split_json, samples_from_coco

    root = generate_dataset(folder / "demo", **DEMO_DATASET)
    out = {}
    for split in ("valid", "test"):
        js = find_split_json(Path(root), split)
        if js is not None:
            out[split] = samples_from_coco(js)
    return out


def score_spread(results: list[dict[str, Any]]) -> dict[str, float]:
    """How the scores of the detections a reviewer would see (score ≥ 0.05) are spread."""
    s = np.array([r["score"] for r in results if r["score"] >= 0.05])
    if len(s) == 0:
        return {"count": 0}
    return {
        "count": len(s),
        "min": float(s.min()),
        "p10": float(np.quantile(s, 0.1)),
        "median": float(np.median(s)),
        "p90": float(np.quantile(s, 0.9)),
        "max": float(s.max()),
        "std": float(s.std()),
        "between_0.3_and_0.7": int(((s >= 0.3) & (s < 0.7)).sum()),
    }


def evaluate_export(
    folder: Path, samples: list[Any], categories: list[tuple[int, str]], gt: dict
) -> dict[str, Any]:
    """Reload a shipped export and score it: bbox and segm metrics plus the score spread."""
    import torch

    from fusereview.training.modelio import load_model
    from fusereview.training.validation import coco_metrics, predict_samples

    loaded = load_model(str(folder))
    results = predict_samples(loaded, samples, categories, device=torch.device("cpu"))
    return {
        "bbox": coco_metrics(gt, results, "bbox"),
        "segm": coco_metrics(gt, results, "segm"),
        "scores": score_spread(results),
    }


class TimeBudget(HookBase):
    """Hook: cosine learning rate over a wall-clock budget (after a linear warmup), then stop."""

    def __init__(self, seconds: float, warmup_steps: int = 20, min_ratio: float = 0.02) -> None:
        self.seconds = seconds
        self.warmup_steps = warmup_steps
        self.min_ratio = min_ratio
        self.t0 = 0.0

    def before_train(self, trainer: Any) -> None:
        self.t0 = time.time()

    def before_step(self, trainer: Any) -> None:
        import math

        frac = min(1.0, (time.time() - self.t0) / self.seconds)
        factor = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
        factor *= min(1.0, (trainer.step + 1) / self.warmup_steps)
        for g in trainer.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * factor
        if frac >= 1.0:
            trainer.request_stop()


def Trainer_steps(run_dir: Path) -> int:
    """Steps per epoch of a run (from its config.json)."""
    return int(json.loads((run_dir / "config.json").read_text())["steps_per_epoch"])


def main(argv: list[str] | None = None) -> int:
    """Build the demo model; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m fusereview.demo.build_model", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where to write the model (default: resources/demo_model)",
    )
    p.add_argument("--train-images", type=int, default=300, help="synthetic training images (default 300)")
    p.add_argument("--minutes", type=float, default=22.0, help="training time budget in minutes (default 22)")
    p.add_argument(
        "--epochs", type=int, default=None, help="fix the epochs instead of fitting the time budget"
    )
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--dice-weight",
        type=float,
        default=5.0,
        help="weight of the mask dice loss (default 5; at the engine's 1 the instance masks of "
        "16-pixel objects had not started to learn after 18 minutes)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: a shared machine thrashes with more)",
    )
    p.add_argument(
        "--work-dir", type=Path, default=None, help="keep the run folder here (default: a temporary folder)"
    )
    args = p.parse_args(argv)

    import torch

    from fusereview.core.files import replace_dir
    from fusereview.training.engine import TrainData, Trainer
    from fusereview.training.hooks import ConsoleProgress
    from fusereview.training.presets import preset_config
    from fusereview.training.validation import gt_from_samples

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(0)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="fusereview-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    splits = demo_splits(work)
    valid, cats, _ = splits["valid"]
    test, _, _ = splits["test"]
    train = render_samples(args.train_images, TRAIN_SEED)
    data = TrainData(
        train, valid, cats, gt_from_samples(valid, cats), "synthetic (fusereview.core.synthetic)"
    )
    common = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "augment": "none",
        "negatives_per_image": 0.25,
        "export_dtype": "bfloat16",
        "seed": 0,
        "loss_weights": {"dice": args.dice_weight} if args.dice_weight is not None else None,
    }

    # The machine is shared, so step times vary by several times: instead of guessing a number
    # of epochs, the learning rate follows a cosine over the *time* budget and the run stops
    # when the budget is spent (the engine saves ``last``; validations keep ``best``).
    budget = args.minutes * 60
    cfg = preset_config(
        "tiny", epochs=args.epochs or 1000, eval_every=2, warmup_epochs=0.5, schedule="inverse_sqrt", **common
    )
    run_dir = work / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    hooks = [ConsoleProgress()] if args.epochs else [ConsoleProgress(), TimeBudget(budget, warmup_steps=20)]
    result = Trainer(data, "tiny", cfg, run_dir, hooks=hooks).train()
    if result.status == "failed" or result.last_path is None:
        print(f"demo model not built: {result.status}: {result.message}", file=sys.stderr)
        return 1
    # The final weights (lr annealed to ~0) against the best validated ones: ship the better.
    chosen = result.last_path
    final_val = evaluate_export(result.last_path, valid, cats, data.valid_gt)["bbox"]["AP"] or 0.0
    if result.best_path is not None and (result.best_map or 0.0) > final_val:
        chosen = result.best_path
    print(f"final val AP {final_val:.4f}, best {result.best_map} -> shipping {chosen.name}", file=sys.stderr)
    epochs = result.step / max(1, Trainer_steps(run_dir))

    out: Path = args.out
    staging = out.with_name(f".{out.name}.new")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(chosen, staging, ignore=shutil.ignore_patterns("trainer_state.pt"))
    if chosen == result.last_path:
        # ``last`` is a float32 training checkpoint; the shipped file is bfloat16 like ``best``.
        from fusereview.training.modelio import load_model, save_export

        shutil.rmtree(staging)
        save_export(
            load_model(str(chosen)),
            staging,
            dtype="bfloat16",
            prompts=dict(cats),
            metrics={"split": "valid", "bbox_AP": final_val},
        )
    shutil.copy(run_dir / "metrics.jsonl", staging / "training_metrics.jsonl")
    shutil.copy(run_dir / "config.json", staging / "training_config.json")
    test_gt = gt_from_samples(test, cats)
    scores = evaluate_export(staging, test, cats, test_gt)
    summary = {
        "test_split": {
            "dataset": "fusereview.core.synthetic.generate_dataset",
            **DEMO_DATASET,
            "split": "test",
            "split_images": len(test),
        },
        "AP50": scores["bbox"]["AP50"],
        "AP": scores["bbox"]["AP"],
        "segm_AP50": scores["segm"]["AP50"],
        "bbox": scores["bbox"],
        "segm": scores["segm"],
        "score_spread": scores["scores"],
        "train_images": args.train_images,
        "train_seed": TRAIN_SEED,
        "epochs": round(epochs, 2),
        "steps": result.step,
        "shipped": chosen.name,
        "best_epoch": result.best_epoch,
        "best_val_AP": result.best_map,
        "final_val_AP": final_val,
        "minutes": round((time.time() - t0) / 60, 1),
    }
    (staging / "metrics.json").write_text(json.dumps(summary, indent=1))
    replace_dir(staging, out)
    print(
        f"demo model written to {out}: test AP50 {summary['AP50']}, scores {summary['score_spread']}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
