"""Regenerate the README screenshots (``docs/screenshots/*.png``) from the demo project.

Usage::

    python packaging/make_screenshots.py [--out docs/screenshots] [--model SPEC] [--size 1366x768]

Everything is real: the demo project (the synthetic fuse-box dataset ``fusereview demo`` uses), the
shipped demo model's predictions (or ``--model``'s), a fine-tuning run of the ``fast`` preset
captured while it runs, and the evaluation of the model's predictions on the test split, each in its
workspace at a laptop's 1366x768. Every window is rendered by the code path of ``fusereview gui
--screenshot`` (offscreen without a display; through the X server when DISPLAY is set). Writes
``start.png``, ``review.png``, ``edit.png``, ``label_issues.png``, ``training.png``, ``evaluation.png`` and
``comparison.png`` (a whole fast-preset run, then its best model against the starting model: a few
minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _wait(condition, seconds: float, what: str) -> None:
    from fusereview.qt.app import wait_until

    if not wait_until(condition, seconds):
        raise SystemExit(f"make_screenshots: gave up waiting for {what} after {seconds:.0f} s")


def main() -> int:
    """Render every screenshot; returns the exit code."""
    parser = argparse.ArgumentParser(description="Regenerate the README screenshots.")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    )
    parser.add_argument("--model", help="model to predict and train with (default: the shipped demo model)")
    parser.add_argument("--size", default="1366x768", help="window size WxH")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    from PySide6.QtCore import QSettings

    from fusereview.core.records import ReviewState
    from fusereview.demo.project import demo_model_dir, prepare_demo_project
    from fusereview.qt.app import make_app, run_gui

    model = args.model or str(demo_model_dir())
    make_app()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        project = prepare_demo_project(tmp / "demo", progress=lambda m: print(m, file=sys.stderr))
        project_dir = str(project.root)
        project.close()
        common = {"settings": settings, "size": (w, h)}

        run_gui(None, None, str(args.out / "start.png"), **common)

        def review(window) -> None:
            # a review in progress: the first image's confident predictions accepted, the weakest rejected
            c = window.controller
            first = window.project.images()[0].id
            preds = sorted(window.project.predictions(image_id=first), key=lambda p: -p.score)
            for p in preds[:2]:
                window.project.decide(p.id, ReviewState.ACCEPTED, by="screenshot")
            if len(preds) > 3:
                window.project.decide(preds[-1].id, ReviewState.REJECTED, by="screenshot")
            c.set_queue_filter(matched=None)  # every prediction, labelled objects too
            c.go_to_row(0)
            window.view.fit()

        run_gui(project_dir, model, str(args.out / "review.png"), window_hook=review, **common)

        def edit(window) -> None:
            c = window.controller
            c.go_to_row(0)
            ov = window.scene.overlay(c.selected)
            if ov is not None:
                x0, y0, x1, y1 = ov.box
                window.view.set_zoom(3.0)
                window.view.centerOn((x0 + x1) / 2, (y0 + y1) / 2)
            window.set_tool("brush")
            window.review.side_tabs.setCurrentIndex(0)  # details of the selected item

        run_gui(project_dir, model, str(args.out / "edit.png"), window_hook=edit, **common)

        def label_issues(window) -> None:
            # the queue's second mode (L): labels the model disagrees with, the first one shown
            window.review.queue_modes.toggle()
            _wait(lambda: window.review.issues.model.rowCount() > 0, 60, "the label issues")
            window.review.issues.go_to_row(0)
            window.view.fit()

        run_gui(project_dir, model, str(args.out / "label_issues.png"), window_hook=label_issues, **common)

        def training(window) -> None:
            # "Retrain" with the fast preset, captured mid-run once a validation point is plotted
            window.show_workspace("train")
            _wait(lambda: window.training_panel is not None, 10, "the training panel")
            panel = window.training_panel
            panel.preset.setCurrentText("fast")
            panel.retrain_btn.click()
            _wait(
                lambda: panel.plots.points("val_AP50") >= 2 or not panel.is_training(),
                600,
                "two validations of the fast preset",
            )

        run_gui(project_dir, model, str(args.out / "training.png"), window_hook=training, **common)

        def evaluation(window) -> None:
            window.show_workspace("evaluate")
            _wait(lambda: window.evaluation_panel is not None, 10, "the evaluation panel")
            panel = window.evaluation_panel
            panel.set_project(window.project)
            job = panel.evaluate_project()
            if job is None:
                raise SystemExit("make_screenshots: no stored predictions to evaluate")
            _wait(lambda: bool(panel.evaluations), 120, "the evaluation")

        run_gui(project_dir, model, str(args.out / "evaluation.png"), window_hook=evaluation, **common)

        def comparison(window) -> None:
            # a whole fast-preset run, then its best model against the one it started from
            window.show_workspace("train")
            _wait(lambda: window.training_panel is not None, 10, "the training panel")
            panel = window.training_panel
            panel.preset.setCurrentText("fast")
            panel.retrain_btn.click()
            _wait(
                lambda: (
                    window.evaluation_panel is not None and window.evaluation_panel.comparison is not None
                ),
                900,
                "the run and the comparison of its best model",
            )

        run_gui(project_dir, model, str(args.out / "comparison.png"), window_hook=comparison, **common)
    for name in (
        "start.png",
        "review.png",
        "edit.png",
        "label_issues.png",
        "training.png",
        "evaluation.png",
        "comparison.png",
    ):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
