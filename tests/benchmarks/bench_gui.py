"""GUI speed benchmark: prints a table of the figures the review GUI must meet.

Runs in a real X window through Qt's xcb plugin: on the display in DISPLAY, or on an Xvfb server
it starts itself (``--platform offscreen`` measures without a window system, for comparison: it
has no compositor and no X round trips, and reads lower).

Figures
-------
- next-image latency (PageDown pressed -> frame painted) for 1024x1024 and 4000x3000 photos with 50
  masked predictions each: p50 / p95 (goals: p95 < 30 ms and < 80 ms). The reviewer is given a
  think time between key presses (``--think-ms``), during which the next photo is prefetched, as
  in real use.
- queue of 10,000 images / 100,000 predictions: model built and table shown (goal < 1 s).
- event-loop stalls (gaps between 5 ms timer ticks) while the whole demo dataset is predicted by
  the shipped demo model, and over the first minute of a fast-preset retrain of it (goals: max
  < 50 ms, p99 < 20 ms, both); the same measurement with no job is the noise floor.

Run: ``python tests/benchmarks/bench_gui.py [--quick] [--platform xcb|offscreen]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fusereview.core.coco import load_dataset
from fusereview.core.geometry import mask_to_rle
from fusereview.core.project import Project
from fusereview.core.records import Detection


def make_dataset(root: Path, n_images: int, width: int, height: int, *, files: bool = True) -> Path:
    """A single-json COCO dataset of textured photos (or, with ``files=False``, entries only)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for i in range(n_images):
        name = f"img{i:05d}.jpg"
        if files:
            small = rng.integers(0, 255, size=(height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
            img = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
            cv2.imwrite(str(root / name), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        images.append({"id": i, "file_name": name, "width": width, "height": height})
    data = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "fuse neutrals"}]}
    (root / "annotations.json").write_text(json.dumps(data))
    return root / "annotations.json"


def masked_detections(rng: np.random.Generator, width: int, height: int, n: int) -> list[Detection]:
    """``n`` ellipse-shaped predictions with masks, sized like fuse links in the photo."""
    dets = []
    scale = max(width, height) / 1024
    for _ in range(n):
        w = int(rng.integers(20, 60) * scale)
        h = int(rng.integers(30, 90) * scale)
        x = int(rng.integers(0, width - w))
        y = int(rng.integers(0, height - h))
        m = np.zeros((height, width), dtype=np.uint8)
        cv2.ellipse(m, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
        dets.append(
            Detection((x, y, x + w, y + h), float(rng.uniform(0.05, 0.99)), mask_to_rle(m.astype(bool)), 1)
        )
    return dets


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def bench_next_image(
    tmp: Path, width: int, height: int, n_images: int, think_ms: int
) -> tuple[float, float, int]:
    """p50 and p95 (ms) of PageDown -> painted frame, and how many frames were measured."""
    from PySide6.QtCore import QEvent, QObject, QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from fusereview.qt.main_window import MainWindow

    ds = make_dataset(tmp / f"ds{width}", n_images, width, height)
    project = Project.create(tmp / f"proj{width}", load_dataset(ds))
    rng = np.random.default_rng(1)
    for img in project.images():
        project.store_predictions(img.id, "bench", "k", masked_detections(rng, width, height, 50))
    window = MainWindow(QSettings(str(tmp / f"s{width}.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.open_project(project)
    window.show()
    app = QApplication.instance()
    c = window.controller
    c.open_image(project.images()[0].id)

    class PaintWatch(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.painted = 0

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.painted += 1
            return False

    watch = PaintWatch()
    window.view.viewport().installEventFilter(watch)

    def idle(ms: int) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    idle(300)
    times = []
    for _ in range(n_images - 1):
        idle(think_ms)
        before = watch.painted
        t0 = time.perf_counter()
        QTest.keyClick(window.view, Qt.Key.Key_PageDown)
        app.processEvents()  # delivers the update: the frame is painted here
        if watch.painted == before:
            window.view.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1000)
    window.close()
    return _percentile(times, 50), _percentile(times, 95), len(times)


def bench_queue(tmp: Path, n_images: int, per_image: int) -> tuple[float, float, float]:
    """(seconds to store the predictions, seconds to build and show the queue panel, seconds to
    open the project in the whole window)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from fusereview.qt.controller import ReviewController
    from fusereview.qt.main_window import MainWindow
    from fusereview.qt.panels.review import ReviewPanel

    ds = make_dataset(tmp / "dsq", n_images, 1024, 1024, files=False)
    project = Project.create(tmp / "projq", load_dataset(ds))
    rng = np.random.default_rng(2)
    t = time.perf_counter()
    for i, img in enumerate(project.images()):
        dets = [
            Detection((10.0, 10.0, 50.0, 60.0), float(s), None, 1)
            for s in rng.uniform(0.05, 0.99, size=per_image)
        ]
        project.store_predictions(img.id, "bench", "k", dets)
        if i % 500 == 0:
            print(f"\r  storing predictions {i}/{n_images}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store_s = time.perf_counter() - t
    app = QApplication.instance()
    # the queue alone: the core's queue as a table model, in its panel, painted
    t = time.perf_counter()
    controller = ReviewController(project, thumbnails=False)
    panel = ReviewPanel(controller)
    panel.resize(400, 800)
    panel.show()
    app.processEvents()
    queue_s = time.perf_counter() - t
    assert controller.queue_model.rowCount() == n_images * per_image
    panel.close()
    controller.close()
    # the whole window opening the project (image list, queue, details, prompts)
    window = MainWindow(QSettings(str(tmp / "sq.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    window._show_context = lambda *a: None  # type: ignore[method-assign]  # photos do not exist here
    t = time.perf_counter()
    window.open_project(project)
    app.processEvents()
    open_s = time.perf_counter() - t
    window.close()
    return store_s, queue_s, open_s


class Ticks:
    """Gaps between the ticks of a 5 ms timer: how long the event loop was away each time."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self.ends: list[float] = []  # perf_counter at the end of each gap (for --why)
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self.last) * 1000)
        self.ends.append(now)
        self.last = now

    def run(self, until: object, limit_s: float) -> list[float]:
        """Measure while ``until()`` is false (at most ``limit_s``); returns the gaps (ms)."""
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        self.gaps = []
        self.ends = []
        self.last = time.perf_counter()
        self.timer.start()
        end = time.perf_counter() + limit_s
        while not until() and time.perf_counter() < end:  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.001)
        self.timer.stop()
        if SAMPLER is not None:
            SAMPLER.explain(self.gaps, self.ends, end - limit_s)
        return list(self.gaps)


class StackSampler:
    """``--why``: samples every thread's stack every 2 ms, to say what the GUI thread did in a stall.

    A sampler that cannot get the GIL for a while is itself the answer (another thread held it):
    the first sample after such a hole shows where that thread was.
    """

    def __init__(self, threshold_ms: float) -> None:
        import threading

        self.threshold_ms = threshold_ms
        self.main_id = threading.main_thread().ident
        self.samples: list[tuple[float, list[str], dict[str, list[str]]]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="stall-sampler", daemon=True)
        self._thread.start()

    @staticmethod
    def _stack(frame: object, depth: int = 6) -> list[str]:
        import traceback

        out = []
        for fs in traceback.extract_stack(frame)[::-1]:  # type: ignore[arg-type]
            out.append(f"{Path(fs.filename).name}:{fs.lineno} {fs.name}")
            if len(out) >= depth:
                break
        return out

    def _run(self) -> None:
        import threading

        names = {}
        while not self._stop:
            t = time.perf_counter()
            frames = sys._current_frames()
            for th in threading.enumerate():
                names[th.ident] = th.name
            main = self._stack(frames[self.main_id]) if self.main_id in frames else []
            others = {
                names.get(k, str(k)): self._stack(f, 4)
                for k, f in frames.items()
                if k not in (self.main_id, threading.get_ident())
            }
            self.samples.append((t, main, others))
            # frames hold their locals: kept across the sleep they kept Qt wrappers alive past
            # their objects, and PySide handed such a stale QWidget wrapper out for a new header
            del frames
            time.sleep(0.002)

    def explain(self, gaps: list[float], ends: list[float], t0: float) -> None:
        """Print, for each gap over the threshold, what the samples inside it show."""
        from collections import Counter

        times = [s[0] for s in self.samples]
        import bisect

        for gap, end in zip(gaps, ends, strict=True):
            if gap < self.threshold_ms:
                continue
            start = end - gap / 1000
            i, j = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
            inside = self.samples[i:j]
            holes = [
                (b[0] - a[0]) * 1000
                for a, b in zip(self.samples[max(i - 1, 0) : j], self.samples[i : j + 1], strict=False)
            ]
            print(
                f"  stall {gap:.1f} ms at +{start - t0:.2f} s: {len(inside)} samples, longest sampler hole "
                f"{max(holes, default=0):.1f} ms",
                file=sys.stderr,
            )
            top = Counter(" < ".join(s[1][:4]) for s in inside).most_common(3)
            for stack, n in top:
                print(f"    main x{n}: {stack}", file=sys.stderr)
            after = self.samples[j] if j < len(self.samples) else None
            if after is not None:
                for name, st in after[2].items():
                    print(f"    after, {name}: {' < '.join(st)}", file=sys.stderr)


SAMPLER: StackSampler | None = None


def _settle(seconds: float) -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def bench_stall(tmp: Path, quick: bool, retrain_s: float) -> dict[str, list[float]]:
    """Event-loop gaps (ms): idle, predicting the whole demo dataset, the first part of a retrain."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from fusereview.demo.project import demo_model_dir, prepare_demo_project
    from fusereview.qt.main_window import MainWindow
    from fusereview.qt.workers import LoadModelJob

    project = prepare_demo_project(tmp / "demo")
    model = str(demo_model_dir())
    print("  loading the demo model", file=sys.stderr)
    predictor = LoadModelJob(model, "cpu").work()  # what the window's loading job does, here and now
    from fusereview.qt.gc_guard import settle

    settle()  # as the window does once a model is loaded (else the idle phase times a full GC of it)
    window = MainWindow(QSettings(str(tmp / "ss.ini"), QSettings.Format.IniFormat))
    window.resize(1366, 768)
    window.open_project(project)
    window.show()
    _settle(3)  # the window's first layout, paint and thumbnails are not the job's
    ticks = Ticks()
    out: dict[str, list[float]] = {"idle": ticks.run(lambda: False, 3)}
    window.model_spec = model
    window.set_predictor(predictor)  # as a loaded model does: it predicts every image
    print("  predicting the demo dataset", file=sys.stderr)
    out["predict"] = ticks.run(lambda: window.predict_job is None, 1800)
    # the first switch to the Train workspace builds and paints its plots: timed on its own (a
    # reviewer switches, then clicks Retrain), not as a stall of the retrain
    t = time.perf_counter()
    window.show_workspace("train")
    QApplication.instance().processEvents()
    out["switch_ms"] = [(time.perf_counter() - t) * 1000]
    _settle(2)
    panel = window.training_panel
    panel.preset.setCurrentText("fast")
    print(f"  retraining (fast preset) for {retrain_s:.0f} s", file=sys.stderr)
    panel.retrain_btn.click()
    out["retrain"] = ticks.run(lambda: False, retrain_s)
    out["retrain_steps"] = [float(panel.plots.points("loss"))]
    window.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--think-ms", type=int, default=150, help="reviewer think time between key presses")
    parser.add_argument("--skip", nargs="*", default=[], choices=["small", "large", "queue", "stall"])
    parser.add_argument("--platform", choices=["xcb", "offscreen"], default="xcb")
    parser.add_argument(
        "--why", type=float, metavar="MS", help="explain each stall over MS ms (a stack sampler; adds load)"
    )
    args = parser.parse_args()
    global SAMPLER
    if args.why:
        SAMPLER = StackSampler(args.why)
    platform = args.platform
    xvfb = None
    if platform == "xcb" and not os.environ.get("DISPLAY"):
        xvfb = _start_xvfb()
    os.environ["QT_QPA_PLATFORM"] = platform
    from fusereview.qt.app import make_app

    app = make_app()
    if app.platformName() != platform:
        raise SystemExit(f"bench_gui: Qt runs on {app.platformName()!r}, not {platform!r}")
    q = args.quick
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "small" not in args.skip:
            p50, p95, n = bench_next_image(tmp, 1024, 1024, 6 if q else 21, args.think_ms)
            rows.append(
                (
                    "next image 1024x1024, 50 masks",
                    f"p50 {p50:.1f} ms",
                    f"p95 {p95:.1f} ms ({n} frames)",
                    "p95 < 30 ms",
                )
            )
        if "large" not in args.skip:
            p50, p95, n = bench_next_image(tmp, 4000, 3000, 4 if q else 11, max(args.think_ms, 400))
            rows.append(
                (
                    "next image 4000x3000, 50 masks",
                    f"p50 {p50:.1f} ms",
                    f"p95 {p95:.1f} ms ({n} frames)",
                    "p95 < 80 ms",
                )
            )
        if "queue" not in args.skip:
            n_img, per = (1000, 10) if q else (10_000, 10)
            store_s, shown_s, open_s = bench_queue(tmp, n_img, per)
            rows.append(
                (
                    f"open project, {n_img:,} images (whole window)",
                    f"{open_s * 1000:.0f} ms",
                    "",
                    "",
                )
            )
            rows.append(
                (
                    f"queue {n_img:,} images / {n_img * per:,} predictions",
                    f"shown {shown_s * 1000:.0f} ms",
                    f"(setup {store_s:.0f} s)",
                    "< 1 s",
                )
            )
        if "stall" not in args.skip:
            gaps = bench_stall(tmp, q, 20 if q else 60)
            for key, label in (
                ("predict", "event-loop stall, demo model predicting the demo dataset"),
                ("retrain", f"event-loop stall, first {20 if q else 60} s of a fast retrain"),
                ("idle", "event-loop stall, no job (noise floor)"),
            ):
                g = gaps[key]
                rows.append(
                    (
                        f"{label} [{platform}]",
                        f"max {max(g, default=0):.1f} ms",
                        f"p99 {_percentile(g, 99):.1f} ms ({len(g)} ticks)",
                        "" if key == "idle" else "max < 50 ms, p99 < 20 ms",
                    )
                )
            rows.append(("  training steps in that time", f"{gaps['retrain_steps'][0]:.0f}", "", ""))
            rows.append(
                (
                    "first switch to the Train workspace (builds its plots)",
                    f"{gaps['switch_ms'][0]:.0f} ms",
                    "",
                    "",
                )
            )
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'':<14}  {'':<28}  goal")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:<14}  {r[2]:<28}  {r[3]}")
    if xvfb is not None:
        xvfb.terminate()
    return 0


def _start_xvfb():
    """An Xvfb server for the benchmark's window (DISPLAY set to it)."""
    import shutil
    import subprocess

    exe = shutil.which("Xvfb")
    if exe is None:
        raise SystemExit("bench_gui: no DISPLAY and no Xvfb (bash packaging/bootstrap.sh test installs it)")
    for n in range(150, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists():
            break
    proc = subprocess.Popen([exe, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"])
    for _ in range(300):
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            break
        time.sleep(0.05)
    os.environ["DISPLAY"] = f":{n}"
    return proc


if __name__ == "__main__":
    sys.exit(main())
