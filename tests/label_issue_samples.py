"""A tiny project with four planted label errors, and predictions made from the true labels.

Shared by the core test (tests/unit/test_label_issues.py) and the keyboard test
(tests/qt/test_label_issues_keys.py): both check that each planted error is found, ranked above
every correct label, and fixed into the exported COCO.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusereview.core.coco import ROBOFLOW_JSON, load_dataset
from fusereview.core.geometry import box_iou, segmentation_to_rle
from fusereview.core.project import Project
from fusereview.core.records import Detection
from fusereview.core.synthetic import generate_dataset

MODEL = "planted-model"
HOLDER = 2  # the second category's id ("fuse holder")


@dataclass
class Planted:
    """Where the errors are: project ids of the labels, and the dropped object's true box (xyxy)."""

    image_id: int  # the train image they are all on
    missing_box: tuple[float, float, float, float]
    misplaced: int  # annotation id of the shifted label
    misplaced_truth: tuple[float, float, float, float]  # its true box (xyxy)
    wrong_class: int  # annotation id of the label given class HOLDER
    spurious: int  # annotation id of the box on nothing
    true_boxes: dict[int, list[tuple[float, float, float, float]]]  # image id -> true boxes


def _xyxy(bbox: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = bbox
    return (x, y, x + w, y + h)


def planted_project(root: Path, *, seed: int = 3) -> tuple[Project, Planted]:
    """Import a 5-image synthetic dataset whose first train image has four planted label errors.

    On that image: one object loses its label (missing), one label is moved by 60 % of its width
    towards the middle (misplaced), one gets class "fuse holder" (wrong class), and one box-only
    label sits where there is nothing (spurious). Every true object of every image then gets a
    prediction from its true label (mask included, distinct scores 0.62-0.95, category "fuse
    neutrals"), and each image one weak false positive (0.08).
    """
    ds = generate_dataset(root / "ds", images=5, size=256, seed=seed)
    truth: dict[str, dict] = {}
    plan: dict = {}
    spurious_box: list[tuple[float, float, float, float]] = []
    for js in sorted(ds.glob(f"*/{ROBOFLOW_JSON}")):
        data = json.loads(js.read_text())
        data["categories"].append({"id": HOLDER, "name": "fuse holder", "supercategory": "fuse-neutrals"})
        truth[js.parent.name] = copy.deepcopy(data)
        if js.parent.name == "train":
            plan = _plant(data)
            spurious_box.append(_xyxy(data["annotations"][-1]["bbox"]))
        js.write_text(json.dumps(data))
    project = Project.create(root / "proj", load_dataset(ds))
    ids = {(img.split, img.file_name): img.id for img in project.images()}
    rows = {
        (split, coco): pid
        for pid, coco, split in project.db.read(
            "SELECT a.id, a.coco_id, i.split FROM annotations a JOIN images i ON i.id = a.image_id"
        )
    }
    scores = iter(np.linspace(0.95, 0.62, sum(len(d["annotations"]) for d in truth.values())))
    true_boxes: dict[int, list[tuple[float, float, float, float]]] = {}
    for split, data in truth.items():
        for img in data["images"]:
            image_id = ids[(split, img["file_name"])]
            dets = []
            for ann in (a for a in data["annotations"] if a["image_id"] == img["id"]):
                rle = segmentation_to_rle(ann["segmentation"], img["height"], img["width"])
                dets.append(Detection(_xyxy(ann["bbox"]), float(next(scores)), rle, 1, "fuse neutrals"))
            true_boxes[image_id] = [d.box for d in dets]
            fp = _empty_box(true_boxes[image_id] + spurious_box, img["width"])  # overlaps no label either
            dets.append(Detection(fp, 0.08, None, 1, "fuse neutrals"))
            project.store_predictions(image_id, MODEL, "planted", dets)
    train = truth["train"]
    image = next(i for i in train["images"] if i["id"] == plan["image"])
    planted = Planted(
        image_id=ids[("train", image["file_name"])],
        missing_box=tuple(plan["missing_box"]),
        misplaced=rows[("train", plan["misplaced"])],
        misplaced_truth=tuple(plan["misplaced_truth"]),
        wrong_class=rows[("train", plan["wrong_class"])],
        spurious=rows[("train", plan["spurious"])],
        true_boxes=true_boxes,
    )
    return project, planted


def _empty_box(
    boxes: list[tuple[float, float, float, float]], size: int
) -> tuple[float, float, float, float]:
    """A 20x20 box that overlaps none of ``boxes`` (scanning the image on a grid)."""
    taken = np.array(boxes).reshape(-1, 4)
    for y in range(4, size - 24, 6):
        for x in range(4, size - 24, 6):
            box = (float(x), float(y), float(x + 20), float(y + 20))
            if not len(taken) or box_iou(np.array([box]), taken).max() == 0.0:
                return box
    raise AssertionError("no empty place on the image")


def _plant(data: dict) -> dict:
    """Plant the four errors on the train image with the most objects; returns where they are."""
    counts: dict[int, int] = {}
    for a in data["annotations"]:
        counts[a["image_id"]] = counts.get(a["image_id"], 0) + 1
    image_id = max(counts, key=lambda i: (counts[i], -i))
    image = next(i for i in data["images"] if i["id"] == image_id)
    anns = [a for a in data["annotations"] if a["image_id"] == image_id]
    boxes = [_xyxy(a["bbox"]) for a in anns]
    # the objects nearest the middle (a screenshot of them shows their surroundings)
    cx, cy = image["width"] / 2, image["height"] / 2
    middle = sorted(
        anns,
        key=lambda a: (
            (a["bbox"][0] + a["bbox"][2] / 2 - cx) ** 2 + (a["bbox"][1] + a["bbox"][3] / 2 - cy) ** 2
        ),
    )
    dropped, moved, retagged = middle[0], middle[1], middle[2]
    data["annotations"].remove(dropped)
    # the move: 60 % of its width towards the middle of the image
    x, y, w, h = moved["bbox"]
    dx = 0.6 * w if x + w / 2 < image["width"] / 2 else -0.6 * w
    moved["bbox"] = [x + dx, y, w, h]
    moved["segmentation"] = [
        [v + dx if i % 2 == 0 else v for i, v in enumerate(p)] for p in moved["segmentation"]
    ]
    retagged["category_id"] = HOLDER
    sx0, sy0, sx1, sy1 = _empty_box(boxes, image["width"])
    spurious_id = max(a["id"] for a in data["annotations"]) + 1
    data["annotations"].append(
        {
            "id": spurious_id,
            "image_id": image_id,
            "category_id": 1,
            "bbox": [sx0, sy0, sx1 - sx0, sy1 - sy0],
            "area": (sx1 - sx0) * (sy1 - sy0),
            "segmentation": [],
            "iscrowd": 0,
        }
    )
    return {
        "image": image_id,
        "missing_box": list(_xyxy(dropped["bbox"])),
        "misplaced": moved["id"],
        "misplaced_truth": [x, y, x + w, y + h],
        "wrong_class": retagged["id"],
        "spurious": spurious_id,
    }


def overlook_a_label(project: Project, where: Planted) -> Any:
    """Make the model "overlook" one correct label of the planted image: its prediction is rejected.

    A rejected prediction is no evidence, so the label then has nothing near it, as the planted
    spurious label: on detections alone the two tie. Returns the label.
    """
    from fusereview.core.records import ReviewState

    unseen = next(
        a
        for a in project.annotations(image_id=where.image_id)
        if a.id not in (where.spurious, where.misplaced, where.wrong_class)
    )
    for p in project.predictions(image_id=where.image_id, model=MODEL):
        if p.match_annotation_id == unseen.id:
            project.decide(p.id, ReviewState.REJECTED, by="test")
    return unseen
