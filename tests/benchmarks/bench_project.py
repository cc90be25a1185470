"""Speed of the project database on a big synthetic COCO (not part of the test suite).

Run::

    .venv/bin/python tests/benchmarks/bench_project.py                 # 10,000 images, 100,000 polygons
    .venv/bin/python tests/benchmarks/bench_project.py --images 500 --annotations 5000   # smoke

Prints one table. Targets (issue 2): import < 10 s, open < 1 s, export < 5 s, review queue over
100,000 predictions well under 1 s. The baseline is a plain ``json.load`` + ``pycocotools.COCO()`` of
the same file in the same run: the ratio to beat. The images of the benchmark exist only in the json
(no files), which is why content hashes are computed lazily, not at import.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

from fusereview.core.coco import load_dataset
from fusereview.core.project import Project
from fusereview.core.records import Detection, ReviewState
from fusereview.core.review import ReviewSession
from fusereview.core.synthetic import generate_coco_stress


class Table:
    """Rows of (step, wall seconds, CPU seconds, note).

    CPU time is printed beside wall time: on a machine shared with other jobs, the wall time
    measures them as much as us.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, str]] = []

    def measure(self, name: str, fn: Callable[[], Any], note: str = "", *, per: int = 1) -> Any:
        """Run ``fn`` once, record its time (divided by ``per``), return its result."""
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        self.rows.append((name, wall / per, cpu / per, note))
        return out

    def add(self, name: str, wall: float, cpu: float, note: str = "") -> None:
        """Record a time measured elsewhere."""
        self.rows.append((name, wall, cpu, note))

    def print(self, base: float) -> None:
        """Print the table, each wall time also as a multiple of ``base``."""
        width = max(len(r[0]) for r in self.rows)
        print(f"{'step':<{width}}  {'wall s':>8}  {'cpu s':>8}  {'x base':>7}  note")
        for name, wall, cpu, note in self.rows:
            print(f"{name:<{width}}  {wall:8.3f}  {cpu:8.3f}  {wall / base:7.2f}  {note}")


def baseline(path: Path) -> Any:
    """What every COCO tool does to read the file: ``json.load`` then ``COCO()`` on the dict."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def fill_predictions(project: Project, per_image: int, through_api: int) -> tuple[float, int]:
    """Store ``per_image`` predictions on every image.

    The first ``through_api`` images go through :meth:`Project.store_predictions` (one committed,
    fsynced transaction per image, as ``predict`` does): their time per image is returned. The rest
    are bulk-inserted with SQL, only to have 100,000 predictions for the queue benchmark.
    """
    images = project.images()
    dets = [
        Detection((1.0, 2.0, 30.0, 40.0), (k + 1) / (per_image + 1), None, 1, "p") for k in range(per_image)
    ]
    start = time.perf_counter()
    for image in images[:through_api]:
        project.store_predictions(image.id, "bench", "k", dets)
    per_image_s = (time.perf_counter() - start) / max(1, min(through_api, len(images)))
    rows = [
        (image.id, 1, "bench", "k", "p", ((image.id * 7 + k) % 997) / 997.0, 1.0, 2.0, 30.0, 40.0, None)
        for image in images[through_api:]
        for k in range(per_image)
    ]
    with project.db.write() as conn:
        conn.executemany(
            "INSERT INTO predictions (image_id, category_id, model, cache_key, prompt, score, x0, y0, x1, y1, mask)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return per_image_s, len(images) * per_image


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--predictions-per-image", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src = work / "stress" / "_annotations.coco.json"
        src.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        generate_coco_stress(args.images, args.annotations, src)
        t_gen, size_mb = time.perf_counter() - start, src.stat().st_size / 1e6
        table = Table()
        table.measure("baseline: json.load + COCO()", lambda: baseline(src), "the ratio to beat")
        dataset = table.measure("  load_dataset (coco.py)", lambda: load_dataset(src))
        create = functools.partial(Project.create, work / "p", dataset)
        project = table.measure("  Project.create (rows into SQLite)", create)
        project.close()
        # the loaded json (millions of objects) would slow every later step through the garbage
        # collector; the GUI never holds it, so neither does the rest of this benchmark
        del dataset, create
        (_, w1, c1, _), (_, w2, c2, _) = table.rows[-2:]
        table.add("import = load_dataset + create", w1 + w2, c1 + c2, "target < 10 s")
        project = table.measure("open existing project", lambda: Project.open(work / "p"), "target < 1 s")
        images = table.measure("  list every image", project.images)
        out = work / "export" / "all.json"
        table.measure("export (write + pycocotools check)", lambda: project.export_coco(out), "target < 5 s")
        table.measure("  to_coco_dict", project.to_coco_dict)
        through_api = min(200, len(images))
        start = time.perf_counter()
        per_image, n_preds = fill_predictions(project, args.predictions_per_image, through_api)
        table.add(
            f"store_predictions, per image ({args.predictions_per_image} dets)",
            per_image,
            float("nan"),
            f"fsynced; total fill {time.perf_counter() - start:.1f} s",
        )
        session = ReviewSession(project, "bench")
        queue = table.measure(f"review queue over {n_preds} predictions", session.queue, "target well < 1 s")
        split = project.splits()[0]
        table.measure(
            "  queue, score 0.2-0.4 + split filter",
            lambda: session.queue(score_min=0.2, score_max=0.4, split=split),
        )
        ids = [item.prediction_id for item in queue[:50]]
        table.measure(
            "decide (reject), per decision",
            lambda: [project.decide(pid, ReviewState.REJECTED, by="bench") for pid in ids],
            "committed + fsynced",
            per=max(1, len(ids)),
        )
        table.measure("export --only-reviewed", lambda: project.export_coco(out, only_reviewed=True))
        project.close()
        table.measure("open again (with predictions)", lambda: Project.open(work / "p").close())

    print(
        f"\n{args.images} images, {args.annotations} polygon annotations, json {size_mb:.1f} MB "
        f"(generated in {t_gen:.1f} s)"
    )
    table.print(table.rows[0][1])


if __name__ == "__main__":
    main()
