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
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

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
