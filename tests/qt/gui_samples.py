"""Sample data of the GUI tests: a second category and deterministic predictions from the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fusereview.core.geometry import mask_to_rle, segmentation_to_rle
from fusereview.core.project import Project
from fusereview.core.records import Detection

MODEL = "test-model"


def add_second_category(dataset: Path) -> None:
    """Give every split a second class ("fuse holder") so that keys 1-9 have something to choose."""
    for js in dataset.glob("*/_annotations.coco.json"):
        data = json.loads(js.read_text())
        top = max(c["id"] for c in data["categories"])
        data["categories"].append({"id": top + 1, "name": "fuse holder", "supercategory": "fuse-neutrals"})
        js.write_text(json.dumps(data))


def store_fake_predictions(
    project: Project, per_image: int = 3, seed: int = 0, *, labelled: bool = False
) -> int:
    """Store predictions made from the ground truth's masks plus one false positive per image.

    ``labelled=False`` (default): the labels those predictions were made from are deleted first,
    so the predictions are objects the labels missed (they match nothing and fill the queue);
    ``labelled=True`` keeps them: the predictions then match their labels (core.matching).
    Returns how many were stored. Scores are distinct, so queue order is deterministic.
    """
    rng = np.random.default_rng(seed)
    cat = project.categories()[0].id
    n = 0
    for img in project.images():
        dets = []
        for ann in project.annotations(image_id=img.id)[: per_image - 1]:
            if not labelled:
                project.delete_annotation(ann.id)
            rle = segmentation_to_rle(ann.segmentation, img.height, img.width)
            x, y, w, h = ann.bbox
            dets.append(
                Detection((x, y, x + w, y + h), float(rng.uniform(0.35, 0.95)), rle, cat, "fuse neutrals")
            )
        m = np.zeros((img.height, img.width), dtype=bool)
        m[10:40, 10:50] = True
        dets.append(
            Detection(
                (10.0, 10.0, 50.0, 40.0), float(rng.uniform(0.05, 0.3)), mask_to_rle(m), cat, "fuse neutrals"
            )
        )
        n += len(project.store_predictions(img.id, MODEL, "test", dets))
    return n


def open_window(qtbot, project: Project, settings, size: tuple[int, int] = (1200, 800)):
    """The main window with ``project`` open, shown (offscreen) and active, so that shortcuts work."""
    from fusereview.qt.main_window import MainWindow

    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(*size)
    w.open_project(project)
    w.show()
    w.activateWindow()  # window shortcuts need the active window
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    w.view.setFocus()
    return w
