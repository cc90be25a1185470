"""Cost of the paired bootstrap of ΔAP against re-running COCOeval per resample.

For splits of several sizes: the evaluator run itself (which also builds the match table), the
paired bootstrap (1,000 resamples by default) on the table, and one COCOeval run on a resampled
split, times the resamples: what the bootstrap would cost without the table.

Usage::

    python tests/benchmarks/bench_bootstrap.py
    python tests/benchmarks/bench_bootstrap.py --images 30 300 3000 --resamples 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fusereview.evaluation.bootstrap import paired_bootstrap, resample_weights
from fusereview.evaluation.cocoeval import run_evaluation
from fusereview.evaluation.fixtures import make_case


def _resampled(gt: dict, results: list[dict], counts: np.ndarray) -> tuple[dict, list[dict]]:
    """One resample as a real dataset (image i repeated counts[i] times), for the COCOeval timing."""
    pos = {im["id"]: k for k, im in enumerate(gt["images"])}
    width = int(counts.max()) + 1
    images = [
        {**im, "id": pos[im["id"]] * width + c}
        for im in gt["images"]
        for c in range(int(counts[pos[im["id"]]]))
    ]
    anns = [
        {**a, "id": n, "image_id": pos[a["image_id"]] * width + c}
        for n, (a, c) in enumerate(
            (a, c) for a in gt["annotations"] for c in range(int(counts[pos[a["image_id"]]]))
        )
    ]
    res = [
        {**r, "image_id": pos[r["image_id"]] * width + c}
        for r in results
        for c in range(int(counts[pos[r["image_id"]]]))
    ]
    return {"images": images, "categories": gt["categories"], "annotations": anns}, res


def main() -> int:
    """Print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[30, 300, 3000])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--backend", default="pycocotools", choices=("pycocotools", "faster"))
    args = parser.parse_args()
    print(
        f"{'images':>7} {'detections':>10} {'eval (s)':>9} {'bootstrap (s)':>14} "
        f"{'COCOeval x resamples (s, est.)':>31}"
    )
    for n in args.images:
        gt, a_res = make_case(n, seed=0, with_masks=False)
        _, b_res = make_case(n, seed=0, with_masks=False)
        for r in b_res:  # B: the same detections, scores shuffled a little
            r["score"] = min(1.0, r["score"] * 1.1)
        t0 = time.perf_counter()
        a = run_evaluation(gt, a_res, backend=args.backend)
        t_eval = time.perf_counter() - t0
        b = run_evaluation(gt, b_res, backend=args.backend)
        assert a.matches is not None and b.matches is not None
        t0 = time.perf_counter()
        ci = paired_bootstrap(a.matches, b.matches, resamples=args.resamples)["AP"]
        t_boot = time.perf_counter() - t0
        counts = resample_weights(n, 1, seed=1)[0]
        big_gt, big_res = _resampled(gt, a_res, counts)
        t0 = time.perf_counter()
        run_evaluation(big_gt, big_res, backend=args.backend)
        t_one = time.perf_counter() - t0
        print(
            f"{n:>7} {a.matches.det_score.size:>10} {t_eval:>9.2f} {t_boot:>14.2f} "
            f"{2 * t_one * args.resamples:>31.0f}   (ΔAP {ci.format() if ci else 'N/A'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
