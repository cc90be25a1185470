"""Regenerate the README screenshots (``docs/screenshots/*.png``) from the synthetic dataset.

Usage::

    python packaging/make_screenshots.py [--out docs/screenshots] [--model SPEC]

Without ``--model``, the predictions shown are *illustrations*: the synthetic dataset's ground
truth, slightly shifted, with made-up scores, plus a few false positives, stored under the model
name ``illustration (ground truth + noise)`` (the details panel shows that name). The tiny model
that ships for tests is untrained, and its predictions would show nothing a reader could learn
from. With ``--model``, a real model predicts the dataset and the screenshots show its output.
Everything runs offscreen; the window is rendered by ``fusereview gui --screenshot``'s code path.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

ILLUSTRATION = "illustration (ground truth + noise)"


def store_illustrative_predictions(project, seed: int = 0) -> int:
    """Predictions made from the ground truth (shifted a little) plus false positives."""
    from fusereview.core.geometry import mask_to_rle, segmentation_to_rle
    from fusereview.core.records import Detection

    rng = np.random.default_rng(seed)
    n = 0
    for img in project.images():
        dets = []
        for ann in project.annotations(image_id=img.id):
            rle = segmentation_to_rle(ann.segmentation, img.height, img.width)
            if rle is None:
                continue
            dx, dy = rng.integers(-2, 3, size=2)
            from fusereview.core.geometry import rle_to_mask

            m = np.roll(rle_to_mask(rle), (int(dy), int(dx)), axis=(0, 1))
            ys, xs = np.nonzero(m)
            if len(xs) == 0:
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            dets.append(
                Detection(
                    box, float(rng.uniform(0.45, 0.97)), mask_to_rle(m), ann.category_id, "fuse neutrals"
                )
            )
        for _ in range(int(rng.integers(1, 3))):  # false positives, low scores
            w, h = (int(v) for v in rng.integers(20, 50, size=2))
            x, y = int(rng.integers(0, img.width - w)), int(rng.integers(0, img.height - h))
            m = np.zeros((img.height, img.width), dtype=bool)
            m[y : y + h, x : x + w] = True
            cat = project.categories()[0].id
            dets.append(
                Detection(
                    (x, y, x + w, y + h), float(rng.uniform(0.05, 0.4)), mask_to_rle(m), cat, "fuse neutrals"
                )
            )
        n += len(project.store_predictions(img.id, ILLUSTRATION, "illustration", dets))
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate the README screenshots.")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    )
    parser.add_argument("--model", help="predict with this model instead of illustrative predictions")
    parser.add_argument("--size", default="1400x860", help="window size WxH")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    from PySide6.QtCore import QSettings

    from fusereview.core.coco import load_dataset
    from fusereview.core.project import Project
    from fusereview.core.records import ReviewState
    from fusereview.core.synthetic import generate_dataset
    from fusereview.qt.app import make_app, run_gui

    make_app()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        print("generating the synthetic dataset", file=sys.stderr)
        dataset = generate_dataset(tmp / "fuse-neutrals", images=35, size=512, seed=0)
        project_dir = tmp / "fuse-neutrals.fusereview"
        with Project.create(project_dir, load_dataset(dataset)) as project:
            if not args.model:
                store_illustrative_predictions(project)
                # a review in progress: the first image half decided
                first = project.images()[0].id
                preds = sorted(project.predictions(image_id=first), key=lambda p: -p.score)
                for p in preds[: len(preds) // 2]:
                    project.decide(p.id, ReviewState.ACCEPTED if p.score > 0.4 else ReviewState.REJECTED)

        run_gui(None, None, str(args.out / "start.png"), settings=settings, size=(w, h))

        def review(window) -> None:
            window.controller.go_to_row(0)
            window.view.fit()

        run_gui(
            str(project_dir),
            args.model,
            str(args.out / "review.png"),
            settings=settings,
            size=(w, h),
            window_hook=review,
        )

        def edit(window) -> None:
            c = window.controller
            c.go_to_row(0)
            ov = window.scene.overlay(c.selected)
            if ov is not None:
                x0, y0, x1, y1 = ov.box
                window.view.set_zoom(4.0)
                window.view.centerOn((x0 + x1) / 2, (y0 + y1) / 2)
            window.set_tool("brush")
            window.details_dock.raise_()

        run_gui(
            str(project_dir),
            args.model,
            str(args.out / "edit.png"),
            settings=settings,
            size=(w, h),
            window_hook=edit,
        )
    for name in ("start.png", "review.png", "edit.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
