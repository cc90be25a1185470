"""Benchmark: our evaluation (remapping + metrics + per-image errors) against plain pycocotools.

Run: ``.venv/bin/python tests/benchmarks/bench_eval.py [--images 5000] [--detections 20]``.
The issue's budget: our pycocotools-backed evaluation at most 1.5x plain pycocotools (which computes
the metrics only). Also reports faster-coco-eval when installed. Exit status 1 when over budget.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
import time
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fusereview.evaluation.cocoeval import faster_coco_eval_available, run_evaluation
from fusereview.evaluation.fixtures import make_case

BUDGET = 1.5


# CPU time of this process, not wall time: on a shared machine other people's work would
# otherwise decide the ratio (everything here is single-threaded Python and C).
clock = time.process_time


def plain(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> float:
    """Seconds pycocotools alone takes (index, loadRes, evaluate, accumulate, summarize)."""
    gt, results = copy.deepcopy(gt), copy.deepcopy(results)  # not timed: loadRes mutates its input
    t0 = clock()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return clock() - t0


def ours(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str, backend: str) -> float:
    """Seconds of our full evaluation: remap, metrics, per-image errors at IoU 0.5 and 0.75."""
    t0 = clock()
    run_evaluation(gt, results, iou_type=iou_type, backend=backend)
    return clock() - t0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table; returns 1 when over budget."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--detections", type=int, default=20, help="detections per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each (default 1)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    gt, results = make_case(args.images, detections_per_image=args.detections, seed=args.seed, id_start=0)
    print(
        f"case: {args.images} images, {len(gt['annotations'])} objects, {len(results)} detections "
        f"(built in {time.perf_counter() - t0:.1f}s)",
        file=sys.stderr,
    )
    # Plain pycocotools on the same data renumbered from 1 would be the fair reference for the
    # numbers; for time the ids do not matter.
    over = False
    for iou_type in ("bbox", "segm"):
        base = min(plain(gt, results, iou_type) for _ in range(args.repeat))
        mine = min(ours(gt, results, iou_type, "pycocotools") for _ in range(args.repeat))
        ratio = mine / base
        over |= ratio > BUDGET
        line = f"{iou_type} (CPU seconds): pycocotools {base:7.2f}s | ours {mine:7.2f}s ({ratio:.2f}x, budget {BUDGET}x)"
        if faster_coco_eval_available():
            fast = min(ours(gt, results, iou_type, "faster") for _ in range(args.repeat))
            line += f" | ours+faster-coco-eval {fast:7.2f}s ({fast / base:.2f}x)"
        print(line)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
