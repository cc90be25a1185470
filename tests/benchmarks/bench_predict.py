"""End-to-end predict throughput against the raw model forward on the same batches, in one run.

End to end = what ``fusereview predict`` does per image: decode the file, preprocess, model,
post-process (threshold, mask resize), RLE-encode, write into the project database.
Raw forward = the model alone (vision encoder + prompt heads with the parity dummy box) on the
same batches, already preprocessed and on the device. The ratio end-to-end / raw says how much
the pipeline around the model costs; the goal on a GPU is at least 0.9.

Usage::

    python tests/benchmarks/bench_predict.py                      # tiny model, CPU-friendly sizes
    python tests/benchmarks/bench_predict.py --full --device cuda  # full-size random-init SAM3 on a GPU
    python tests/benchmarks/bench_predict.py --full --device cuda --compile
    python tests/benchmarks/bench_predict.py --big                # peak memory, one 6000x4000 photo
    python tests/benchmarks/bench_predict.py --big --old          # ... and the old all-at-once masks

``--big`` predicts one 6000 x 4000 photo at threshold 0.05 (eval's default) in a fresh process and
prints the growth of its peak resident memory during ``predict`` (Linux: the peak is reset through
``/proc/self/clear_refs`` just before), the detections kept, and the growth per kept detection in
units of one full-size binary mask (``height x width`` bytes); the goal is at most 2.

Random weights keep arbitrary numbers of detections; the threshold is calibrated on a warm-up
batch so that about ``--per-image`` detections per image go through post-processing, as with a
trained model on the customer's images.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from fusereview.models.sam3 import Sam3Predictor


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_predictor(args: argparse.Namespace) -> Sam3Predictor:
    """The tiny seeded model, or with ``--full`` the full-size SAM3 with random weights."""
    from transformers import Sam3Config, Sam3Model

    from fusereview.models.checkpoints import LoadedModel, LoadReport
    from fusereview.models.sam3 import Sam3Predictor, load_predictor
    from fusereview.models.tokenizer import build_tiny_tokenizer

    if not args.full:
        return load_predictor("tiny", device=args.device, compile=args.compile)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    with torch.device(device):  # random init on the GPU: seconds instead of a minute on the CPU
        torch.manual_seed(0)
        model = Sam3Model(Sam3Config())
    n = len(model.state_dict())
    # Any CLIP-scheme tokenizer works for timing; the tiny one needs no file (ids < 514 < 49408).
    loaded = LoadedModel(
        model, build_tiny_tokenizer(max_length=32), "bench-full", LoadReport("full", "bench", n)
    )
    return Sam3Predictor(loaded, device=device, compile=args.compile)


def raw_forward(predictor: Sam3Predictor, batches: list[list[np.ndarray]], prompts: list[str]) -> float:
    """Seconds for the model alone on pre-processed batches (inputs prepared outside the timer)."""
    from fusereview.models.preprocess import preprocess

    pixels = [preprocess(b, predictor.image_size, device=predictor.device) for b in batches]
    _sync(predictor.device)
    start = time.perf_counter()
    with predictor._session():
        for px in pixels:
            vision = predictor._vision(pixel_values=px)
            text, mask = predictor._text(prompts)
            for j in range(len(prompts)):
                out = predictor._heads(vision, text[j : j + 1], mask[j : j + 1])
                _ = out.pred_masks  # outputs stay on the device, as the model leaves them
    _sync(predictor.device)
    return time.perf_counter() - start


def calibrate_threshold(
    predictor: Sam3Predictor, images: list[np.ndarray], prompt: str, per_image: int
) -> float:
    """A score threshold that keeps about ``per_image`` detections per image."""
    dets = predictor.predict(images, [(1, prompt)], threshold=0.0)
    kth = [sorted((d.score for d in ds), reverse=True)[min(per_image, len(ds)) - 1] for ds in dets if ds]
    return float(np.median(kth)) - 1e-6 if kth else 0.0


def _rss_kib(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` (peak) of this process in KiB, from ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def big_photo_child(args: argparse.Namespace) -> dict[str, object]:
    """In this (fresh) process: peak memory of predicting one big photo, as one JSON-able dict."""
    import fusereview.models.sam3 as sam3

    if args.old:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
        from model_samples import masks_all_at_once

        sam3.masks_to_rles = masks_all_at_once  # type: ignore[assignment]
    predictor = build_predictor(args)
    height, width = args.big_height, args.big_width
    rng = np.random.default_rng(0)
    # a smooth photo-like image (noise upscaled), not white noise: a few large mask regions
    small = rng.integers(0, 255, (height // 100, width // 100, 3), dtype=np.uint8)
    import cv2

    photo = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    predictor.predict([photo[:256, :256].copy()], [(1, "fuse")], threshold=args.threshold)  # warm-up
    post = {"peak": 0, "before": 0, "seconds": 0.0}
    inner = sam3.detections_from_outputs

    def measured(*a: object, **k: object) -> object:
        # the post-processing alone (threshold, masks, RLE): its own peak, then the overall one kept
        post["outer_peak"] = _rss_kib("VmHWM")
        Path("/proc/self/clear_refs").write_text("5")
        post["before"] = _rss_kib("VmRSS")
        t0 = time.perf_counter()
        out = inner(*a, **k)
        post["seconds"] = time.perf_counter() - t0
        post["peak"] = _rss_kib("VmHWM")
        return out

    sam3.detections_from_outputs = measured  # type: ignore[assignment]
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    dets = predictor.predict([photo], [(1, "fuse")], threshold=args.threshold)[0]
    seconds = time.perf_counter() - start
    peak = max(_rss_kib("VmHWM"), post["outer_peak"])
    growth = (peak - before) * 1024
    post_growth = (post["peak"] - post["before"]) * 1024
    mask_bytes = height * width
    return {
        "path": "old all-at-once" if args.old else "per detection",
        "model": "full" if args.full else "tiny",
        "image": f"{width}x{height}",
        "threshold": args.threshold,
        "kept": len(dets),
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before / 1024, 1),
        "peak_growth_mb": round(growth / 2**20, 1),
        "binary_mask_mb": round(mask_bytes / 2**20, 1),
        "growth_per_kept_in_masks": round(growth / max(1, len(dets)) / mask_bytes, 3),
        "growth_in_masks": round(growth / mask_bytes, 3),
        "postprocess_growth_mb": round(post_growth / 2**20, 1),
        "postprocess_seconds": round(post["seconds"], 2),
        "postprocess_per_kept_in_masks": round(post_growth / max(1, len(dets)) / mask_bytes, 3),
    }


def big_photo(args: argparse.Namespace, argv: list[str]) -> int:
    """Run :func:`big_photo_child` in fresh processes (new path, and the old one with ``--old``)."""
    import subprocess

    rows = []
    for old in [False, True] if args.old else [False]:
        cmd = [sys.executable, __file__, *[a for a in argv if a != "--old"], "--big-child"]
        if old:
            cmd.append("--old")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(
        f"{'path':<18} {'image':>10} {'kept':>5} {'predict: peak growth':>21} {'per kept':>9} "
        f"{'s':>6} | {'masks+RLE: growth':>18} {'per kept':>9} {'s':>6}"
    )
    for r in rows:
        print(
            f"{r['path']:<18} {r['image']:>10} {r['kept']:>5} {r['peak_growth_mb']:>18.1f} MB "
            f"{r['growth_per_kept_in_masks']:>8.3f}x {r['seconds']:>6.1f} | "
            f"{r['postprocess_growth_mb']:>15.1f} MB {r['postprocess_per_kept_in_masks']:>8.3f}x "
            f"{r['postprocess_seconds']:>6.1f}"
        )
    print(
        f"(one full-size binary mask = {rows[0]['binary_mask_mb']} MB; goal: growth per kept "
        "detection <= 2x that)"
    )
    for r in rows:
        print(json.dumps(r))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full-size SAM3 (random init); use with a GPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=16, help="images in the synthetic dataset")
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (the customer's is 512)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--per-image", type=int, default=10, help="detections per image to post-process")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats (best is reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the vision encoder")
    parser.add_argument("--big", action="store_true", help="peak memory of one big photo (see above)")
    parser.add_argument("--old", action="store_true", help="with --big: also the old all-at-once masks")
    parser.add_argument("--big-width", type=int, default=6000)
    parser.add_argument("--big-height", type=int, default=4000)
    parser.add_argument("--threshold", type=float, default=0.05, help="with --big: score threshold")
    parser.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.big_child:
        print(json.dumps(big_photo_child(args)))
        return 0
    if args.big:
        return big_photo(args, raw_argv)

    from fusereview.core.images import load_image
    from fusereview.core.project import Project
    from fusereview.core.synthetic import generate_dataset
    from fusereview.models.predict_job import predict_project, project_prompts

    predictor = build_predictor(args)
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_dataset(
            Path(tmp) / "bench", images=args.images, size=args.size, seed=0, splits=(1.0, 0.0, 0.0)
        )
        project = Project.open_or_import(data)
        records = project.images()
        prompts = [p for _, p in project_prompts(project)]
        images = [load_image(project.image_path(r.id)) for r in records]
        batches = [images[i : i + args.batch_size] for i in range(0, len(images), args.batch_size)]
        threshold = calibrate_threshold(predictor, batches[0], prompts[0], args.per_image)  # also warms up
        raw_forward(predictor, batches[:1], prompts)

        raw_best, e2e_best, counts = float("inf"), float("inf"), {}
        base_fp = predictor.fingerprint
        for rep in range(args.repeats):
            raw_best = min(raw_best, raw_forward(predictor, batches, prompts))
            predictor.fingerprint = f"{base_fp}#bench{rep}"  # a fresh cache entry: nothing is skipped
            _sync(predictor.device)
            start = time.perf_counter()
            counts = predict_project(project, predictor, batch_size=args.batch_size, threshold=threshold)
            _sync(predictor.device)
            e2e_best = min(e2e_best, time.perf_counter() - start)
        project.close()

    n = len(images)
    result = {
        "model": "full" if args.full else "tiny",
        "device": predictor.device,
        "gpu": torch.cuda.get_device_name(0) if predictor.device.startswith("cuda") else None,
        "threads": torch.get_num_threads(),
        "images": n,
        "image_size": args.size,
        "model_input": predictor.image_size,
        "batch_size": args.batch_size,
        "detections_per_image": counts.get("detections", 0) / max(n, 1),
        "raw_images_per_s": n / raw_best,
        "end_to_end_images_per_s": n / e2e_best,
        "ratio": raw_best / e2e_best,
        "compile": args.compile,
    }
    print(
        f"{result['model']} on {result['device']}: raw forward {result['raw_images_per_s']:.2f} img/s, "
        f"end to end {result['end_to_end_images_per_s']:.2f} img/s, ratio {result['ratio']:.2f} "
        f"({result['detections_per_image']:.1f} detections/image)",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
