"""Click to segment: time of the first click on a new image and of a click with the embedding cached.

First click = decode nothing (the image is in memory), preprocess, ViT + the head's neck (the one
vision pass per image), prompt encoder + mask decoder, upsample, RLE. Cached click = the same
without the vision pass: what every further click costs (the goal on a GPU: under 100 ms).

Usage::

    python tests/benchmarks/bench_click.py                    # tiny head (CPU-friendly)
    python tests/benchmarks/bench_click.py --full             # + full-size head and ViT, random weights
    python tests/benchmarks/bench_click.py --full --device cuda

Each click sends all points so far (SAM's protocol) with the previous logits, as the Click tool does;
the timed clicks alternate positive and negative points on a random photo.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tiny_segmenter(device: str):
    from fusereview.models import load_model
    from fusereview.models.interactive import load_interactive

    return load_interactive("tiny", load_model("tiny"), device=device)


def full_segmenter(device: str):
    """Full-size ``Sam3TrackerModel`` (its own ViT: the detector's, at full size) with random weights."""
    from transformers import Sam3TrackerConfig, Sam3TrackerModel

    from fusereview.models.checkpoints import LoadReport
    from fusereview.models.interactive import InteractiveSegmenter, head_state_names

    target = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    with torch.device(target):
        torch.manual_seed(0)
        head = Sam3TrackerModel(Sam3TrackerConfig())
    n = len(head_state_names(head))
    return InteractiveSegmenter(
        head, fingerprint="bench-full", report=LoadReport("full", "bench", n), device=target
    )


def run(seg, name: str, *, size: int, clicks: int, images: int) -> dict:
    rng = np.random.default_rng(0)
    firsts, cached = [], []
    for i in range(images):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        pts: list[tuple[float, float, int]] = []
        logits = None
        for k in range(clicks + 1):
            pts.append((float(rng.uniform(0, size)), float(rng.uniform(0, size)), 1 if k % 2 == 0 else 0))
            _sync(seg.device)
            t = time.perf_counter()
            r = seg.segment(f"{name}-{i}", img, pts, mask_logits=logits)
            _sync(seg.device)
            dt = (time.perf_counter() - t) * 1000
            logits = r.logits
            assert r.embedded == (k == 0)
            (firsts if k == 0 else cached).append(dt)
    return {
        "model": name,
        "device": seg.device,
        "image": f"{size}x{size}",
        "first_ms": statistics.median(firsts),
        "cached_ms": statistics.median(cached),
        "cached_p90_ms": float(np.quantile(cached, 0.9)),
        "clicks": len(cached),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="also the full-size head with random weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=1024, help="photo side in pixels")
    parser.add_argument("--clicks", type=int, default=10, help="timed clicks per photo after the first")
    parser.add_argument("--images", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = [run(tiny_segmenter(args.device), "tiny", size=args.size, clicks=args.clicks, images=args.images)]
    if args.full:
        t = time.perf_counter()
        seg = full_segmenter(args.device)
        print(f"full-size head built in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        rows.append(
            run(seg, "full (random)", size=args.size, clicks=args.clicks, images=max(1, args.images // 3))
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        "| model | device | photo | first click (ms) | cached click, median (ms) | cached p90 (ms) | clicks |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['device']} | {r['image']} | {r['first_ms']:.0f} | {r['cached_ms']:.1f} | "
            f"{r['cached_p90_ms']:.1f} | {r['clicks']} |"
        )
    if not any(r["device"].startswith("cuda") for r in rows):
        print("GPU: not measured here (no GPU); the goal is a cached click under 100 ms on one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
