"""Label issues, ours against cleanlab's object-detection label quality, on planted errors (not a test).

Run::

    .venv/bin/python tests/benchmarks/bench_label_issues.py                  # 300 images, seeds 0 1 2
    .venv/bin/python tests/benchmarks/bench_label_issues.py --images 60 --seeds 0   # smoke

A synthetic two-class dataset (boxes of two categories, 4-12 objects per 640x480 image) gets
planted errors: 10 % of its objects lose their label (missing), 10 % of the boxes are shifted by
30-60 % of their size (misplaced), 5 % change class (wrong class) and 5 % more labels are boxes on
nothing (spurious). The model is good but imperfect: it finds 92 % of the objects with jittered
boxes (5 % of its size, 12 % for one in ten), names 97 % of them right, answers the other
category's prompt weakly on a quarter of them, finds a few twice, and adds false positives; a
missed object is sometimes a weak detection, otherwise nothing. Both methods get exactly those
labels and those predictions (boxes only: cleanlab's method works on boxes), in one run:

- **ours**: the predictions are stored in a project (``store_predictions``) and
  :func:`fusereview.core.label_issues.find_label_issues` scores every label and prediction;
- **cleanlab** (``cleanlab.object_detection``, default parameters): per label box the lower of
  ``compute_badloc_box_scores`` and ``compute_swap_box_scores``, per predicted box
  ``compute_overlooked_box_scores`` (these are what ``get_label_quality_scores`` pools per image);
  an item's issue score is 1 - quality (no score: 0). Per image, ``get_label_quality_scores`` and
  ``find_label_issues``.

Items ranked: every label (a planted error or correct), and every prediction (a missing label when
it covers a dropped object at IoU >= 0.5, the best-ranked one per object; others covering the same
object leave the ranking). A dropped object no prediction covers stays in the ranking at score 0:
neither method can find it. Per kind and overall: precision of the top K (K = the number of planted
errors of that kind, the errors of other kinds left out), recall within the top 2K, and the ROC AUC;
ties are broken against the method (a planted error tied with correct items ranks after them).
Two views: the one queue (each item by its likeliest kind's score; per kind, that kind's errors
among every correct item) and each kind's own queue (what ``find_label_issues(kind=...)`` lists:
every label, or prediction for missing, by its score for that kind; cleanlab by its per-kind box
scores). Goal (issue 14): ours >= cleanlab on every kind, recall >= 0.9 within the top 2x overall.

With ``--demo-model`` (the demo's photos and its model's predictions) or ``--photos`` (the
jittered model on rendered fuse-box photos, 512 px, boxes on nothing 15-40 px) a fourth method,
**ours+boxes**, also asks the demo model's interactive head about the box of each label the
spurious queue lists (:mod:`fusereview.models.box_check`: Shift+U in the window,
``label-issues --check-boxes``).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fusereview.core.coco import load_dataset
from fusereview.core.geometry import box_iou
from fusereview.core.label_issues import KINDS, find_label_issues
from fusereview.core.project import Project
from fusereview.core.records import Detection

WIDTH, HEIGHT = 640, 480
PHOTO_SIZE = 512  # --photos: the rendered fuse-box photos' side
CATEGORIES = ({"id": 1, "name": "fuse neutrals"}, {"id": 2, "name": "fuse holder"})
MODEL = "bench-model"
LABEL_KINDS = ("spurious", "misplaced", "wrong_class")


@dataclass
class Scene:
    """One synthetic dataset: true objects, the noisy labels and the model's predictions."""

    objects: dict[int, list[tuple[int, np.ndarray]]] = field(default_factory=dict)  # image -> (cat, xyxy)
    labels: dict[int, list[tuple[int, np.ndarray, str]]] = field(default_factory=dict)  # (cat, box, truth)
    dropped: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # (image, cat, box)
    preds: dict[int, list[tuple[int, np.ndarray, float]]] = field(default_factory=dict)  # (cat, box, score)
    # the demo-model scenario only: label polygons and prediction masks (ours uses them; cleanlab boxes)
    label_segs: dict[int, list[list]] = field(default_factory=dict)
    pred_masks: dict[int, list[dict | None]] = field(default_factory=dict)
    size: tuple[int, int] = (WIDTH, HEIGHT)
    image_files: dict[int, Path] = field(default_factory=dict)  # the demo's photos (box checks)


def _clip(box: np.ndarray, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    x0, y0, x1, y1 = box
    x0, x1 = np.clip([x0, x1], 0, size[0])
    y0, y1 = np.clip([y0, y1], 0, size[1])
    return np.array([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], dtype=float)


def _random_box(
    rng: np.random.Generator, size: tuple[int, int] = (WIDTH, HEIGHT), sides: tuple[float, float] = (30, 120)
) -> np.ndarray:
    w, h = rng.uniform(*sides), rng.uniform(*sides)
    x, y = rng.uniform(0, size[0] - w), rng.uniform(0, size[1] - h)
    return np.array([x, y, x + w, y + h])


def _jitter(
    rng: np.random.Generator, box: np.ndarray, sigma: float, size: tuple[int, int] = (WIDTH, HEIGHT)
) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    out = box + rng.normal(0, sigma, 4) * np.array([w, h, w, h])
    out = _clip(out, size)
    if out[2] - out[0] < 2 or out[3] - out[1] < 2:
        return _clip(box, size)
    return out


def plant_labels(
    scene: Scene,
    objects: dict[int, list[tuple[int, np.ndarray, list | None]]],
    rng: np.random.Generator,
    *,
    spurious_sides: tuple[float, float],
    spurious_categories: tuple[int, ...],
) -> None:
    """The labels of ``objects`` (image -> (category, xyxy, polygons or None)) with the planted errors.

    10 % of the objects lose their label, 10 % are moved by 30-60 % of their size in a random
    direction (inside the image; polygons move along), 5 % get the other class, and 5 % of the
    objects' count more labels are boxes on nothing (IoU < 0.3 with every object, sides in
    ``spurious_sides``).
    """
    width, height = scene.size
    flat = [(img, k) for img, objs in objects.items() for k in range(len(objs))]
    n = len(flat)
    n_drop, n_shift, n_class = round(0.10 * n), round(0.10 * n), round(0.05 * n)
    fate = dict.fromkeys(flat, "correct")
    for pos, idx in enumerate(rng.permutation(n)):
        if pos < n_drop + n_shift + n_class:
            fate[flat[idx]] = (
                "missing" if pos < n_drop else "misplaced" if pos < n_drop + n_shift else "wrong_class"
            )
    for img, objs in objects.items():
        scene.objects[img] = [(cat, box) for cat, box, _ in objs]
        labels, segs = [], []
        for k, (cat, box, seg) in enumerate(objs):
            f = fate[(img, k)]
            if f == "missing":
                scene.dropped.append((img, cat, box))
                continue
            if f == "misplaced":
                x0, y0, x1, y1 = box
                d, theta = rng.uniform(0.3, 0.6), rng.uniform(0, 2 * np.pi)
                dx = float(np.clip(np.cos(theta) * d * (x1 - x0), -x0, width - x1))
                dy = float(np.clip(np.sin(theta) * d * (y1 - y0), -y0, height - y1))
                labels.append((cat, box + np.array([dx, dy, dx, dy]), f))
                if seg is not None:
                    segs.append([[v + (dx if i % 2 == 0 else dy) for i, v in enumerate(p)] for p in seg])
                continue
            labels.append((3 - cat if f == "wrong_class" else cat, box.copy(), f))
            if seg is not None:
                segs.append(seg)
        scene.labels[img] = labels
        if segs:
            scene.label_segs[img] = segs
    images = sorted(objects)
    placed = 0
    while placed < round(0.05 * n):
        img = images[int(rng.integers(len(images)))]
        w, h = rng.uniform(*spurious_sides), rng.uniform(*spurious_sides)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        box = np.array([x, y, x + w, y + h])
        truth = np.array([b for _, b in scene.objects[img]]).reshape(-1, 4)
        if len(truth) and box_iou(box[None], truth).max() >= 0.3:
            continue
        scene.labels[img].append((int(rng.choice(spurious_categories)), box, "spurious"))
        if img in scene.label_segs:
            scene.label_segs[img].append([])
        placed += 1


def make_scene(n_images: int, seed: int, photos: Path | None = None) -> Scene:
    """Objects, labels with planted errors, and predictions (see the module docstring).

    With ``photos`` (a folder) the objects are those of rendered fuse-box photos
    (:func:`fusereview.core.synthetic.render_image`, 512 px, written there as PNG): the same
    jittered model, on images the interactive head can be asked about (ours+boxes).
    """
    rng = np.random.default_rng(seed)
    scene = Scene(size=(PHOTO_SIZE, PHOTO_SIZE)) if photos is not None else Scene()
    size = scene.size
    fp_sides = (15.0, 40.0) if photos is not None else (30.0, 120.0)
    for img in range(n_images):
        objs: list[tuple[int, np.ndarray]] = []
        if photos is not None:
            import cv2

            from fusereview.core.synthetic import render_image

            pixels, rendered = render_image(rng, PHOTO_SIZE)
            path = photos / f"seed{seed}-img{img:05d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
            scene.image_files[img] = path
            for o in rendered:
                x, y, w, h = o["bbox"]
                if o["area"] >= 50:
                    objs.append((int(rng.choice([1, 2], p=[0.6, 0.4])), np.array([x, y, x + w, y + h])))
        else:
            for _ in range(int(rng.integers(4, 13))):
                for _attempt in range(30):
                    box = _random_box(rng)
                    if not objs or box_iou(box[None], np.array([b for _, b in objs])).max() < 0.1:
                        objs.append((int(rng.choice([1, 2], p=[0.6, 0.4])), box))
                        break
        scene.objects[img] = objs
    truth = {img: [(cat, box, None) for cat, box in objs] for img, objs in scene.objects.items()}
    plant_labels(scene, truth, rng, spurious_sides=fp_sides, spurious_categories=(1, 2))
    for img, objs in scene.objects.items():
        preds: list[tuple[int, np.ndarray, float]] = []
        for cat, box in objs:
            if rng.random() < 0.92:
                sigma = 0.12 if rng.random() < 0.1 else 0.05
                pcat = cat if rng.random() < 0.97 else 3 - cat
                preds.append((pcat, _jitter(rng, box, sigma, size), float(rng.beta(8, 2))))
                if rng.random() < 0.25:  # the other category's prompt answers weakly
                    preds.append((3 - pcat, _jitter(rng, box, 0.06, size), float(rng.uniform(0.05, 0.45))))
                if rng.random() < 0.05:  # found twice
                    preds.append((pcat, _jitter(rng, box, 0.15, size), float(rng.uniform(0.05, 0.5))))
            elif rng.random() < 0.5:  # a miss, sometimes seen weakly
                preds.append((cat, _jitter(rng, box, 0.08, size), float(rng.uniform(0.05, 0.3))))
        for _ in range(int(rng.poisson(0.5))):  # false positives
            fp = _random_box(rng, size, fp_sides)
            preds.append((int(rng.choice([1, 2])), fp, float(rng.uniform(0.05, 0.8))))
        scene.preds[img] = preds
    return scene


def demo_predictions(workdir: Path) -> tuple[list, tuple[int, int], list[Path]]:
    """The demo dataset (35 images, 512 px, seed 0: the demo model never trained on it) and the shipped
    demo model's predictions of both prompts at threshold 0.05: ``[(objects, predictions)]`` per image.

    A second category ("fuse holder", which no image has) is prompted too: its answers on the fuses
    are the real confusions a wrong-class label meets.
    """
    from fusereview.core.synthetic import generate_dataset
    from fusereview.demo.project import demo_model_dir
    from fusereview.models.predict_job import predict_project
    from fusereview.models.sam3 import load_predictor

    ds = generate_dataset(workdir / "demo-ds", images=35, size=512, seed=0)
    for js in ds.glob("*/_annotations.coco.json"):
        data = json.loads(js.read_text())
        data["categories"].append({"id": 2, "name": "fuse holder", "supercategory": "fuse-neutrals"})
        js.write_text(json.dumps(data))
    project = Project.create(workdir / "demo-proj", load_dataset(ds))
    try:
        predictor = load_predictor(demo_model_dir(), device="cpu")
        predict_project(project, predictor, threshold=0.05)
        out = []
        for img in project.images():
            objs = [(a.category_id, a.bbox, a.segmentation) for a in project.annotations(image_id=img.id)]
            preds = [
                (p.category_id, np.array(p.box, dtype=float), p.score, p.mask)
                for p in project.predictions(img.id)
            ]
            out.append((objs, preds))
        size = (project.images()[0].width, project.images()[0].height)
        paths = [project.image_path(img.id) for img in project.images()]
    finally:
        project.close()
    return out, size, paths


def demo_scene(cached: list, size: tuple[int, int], seed: int, paths: list[Path] | None = None) -> Scene:
    """Planted errors (as :func:`make_scene`'s) on the demo labels; the demo model's predictions."""
    rng = np.random.default_rng(seed)
    scene = Scene(size=size, image_files=dict(enumerate(paths or [])))
    truth = {
        img: [(cat, np.array([x, y, x + w, y + h], dtype=float), seg) for cat, (x, y, w, h), seg in objs]
        for img, (objs, _) in enumerate(cached)
    }
    plant_labels(scene, truth, rng, spurious_sides=(15, 40), spurious_categories=(1,))
    for img, (_, preds) in enumerate(cached):
        scene.preds[img] = [(c, b, s) for c, b, s, _ in preds]
        scene.pred_masks[img] = [m for *_, m in preds]
    return scene


# --- ours -------------------------------------------------------------------------------------


def run_ours(scene: Scene, workdir: Path, segmenter: object = None) -> tuple[dict, dict, dict, dict, float]:
    """Store the scene in a project and find its label issues.

    With ``segmenter`` (the demo model's interactive head; the scene has its photos) the labels
    the spurious queue lists are also asked about by their box (:mod:`fusereview.models.box_check`)
    and the fourth value holds that run's results (``"boxes"``: labels, predictions, seconds).

    Returns (label score and kind by (image, label index), prediction score by (image, pred
    index), image scores, extras, seconds).
    """
    images, annotations = [], []
    width, height = scene.size
    for img in scene.labels:
        name = f"img{img:05d}.png"
        if img in scene.image_files:  # the photo itself, for the box checks
            name = f"img{img:05d}{scene.image_files[img].suffix}"
            (workdir / name).symlink_to(scene.image_files[img])
        images.append({"id": img, "file_name": name, "width": width, "height": height})
        segs = scene.label_segs.get(img)
        for k, (cat, box, _truth) in enumerate(scene.labels[img]):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append(
                {
                    "id": img * 100 + k + 1,
                    "image_id": img,
                    "category_id": cat,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "segmentation": segs[k] if segs else [],
                    "iscrowd": 0,
                }
            )
    coco = {"images": images, "annotations": annotations, "categories": list(CATEGORIES)}
    js = workdir / "labels.json"
    js.write_text(json.dumps(coco))
    project = Project.create(workdir / "proj", load_dataset(js))
    try:
        ann_index = {
            pid: (img, c - img * 100 - 1)
            for pid, c, img in project.db.read(
                "SELECT a.id, a.coco_id, i.coco_id FROM annotations a JOIN images i ON i.id = a.image_id"
            )
        }
        image_index = {pid: c for pid, c in project.db.read("SELECT id, coco_id FROM images")}
        pred_index: dict[int, tuple[int, int]] = {}
        project_image = {c: pid for pid, c in image_index.items()}
        for img, preds in scene.preds.items():
            masks = scene.pred_masks.get(img) or [None] * len(preds)
            dets = [
                Detection(tuple(float(v) for v in b), s, m, c)  # type: ignore[arg-type]
                for (c, b, s), m in zip(preds, masks, strict=True)
            ]
            stored = project.store_predictions(project_image[img], MODEL, "bench", dets)
            for k, p in enumerate(stored):
                pred_index[p.id] = (img, k)
        start = time.perf_counter()
        report = find_label_issues(project, MODEL, min_score=0.0)
        seconds = time.perf_counter() - start
        # each kind's own queue (Shift+L, --kind): every label scored for that kind; its scores
        # are what the "kind" view ranks by (each issue's scores for the other kinds), checked here
        per_kind = {k: find_label_issues(project, MODEL, min_score=0.0, kind=k).issues for k in KINDS}
        boxed = None
        if segmenter is not None:
            from fusereview.models.box_check import check_label_boxes, labels_to_check

            start = time.perf_counter()
            support = check_label_boxes(project, segmenter, labels_to_check(project, MODEL))
            boxed = (find_label_issues(project, MODEL, min_score=0.0, box_support=support), len(support))
            box_seconds = time.perf_counter() - start
    finally:
        project.close()
    _check_kind_queues(report.issues, per_kind)

    def scores(rep) -> tuple[dict, dict]:
        labels: dict[tuple[int, int], tuple[float, str, dict[str, float]]] = {}
        preds_out: dict[tuple[int, int], float] = {}
        for issue in rep.issues:
            if issue.annotation_id is not None:
                labels[ann_index[issue.annotation_id]] = (issue.score, issue.kind, dict(issue.scores))
            elif issue.prediction_id is not None:
                preds_out[pred_index[issue.prediction_id]] = issue.score
        return labels, preds_out

    labels, preds_out = scores(report)
    image_scores = {image_index[i]: s for i, s in report.image_scores.items()}
    extra: dict = {"n_issues": len(report.issues)}
    if boxed is not None:
        extra["boxes"] = (*scores(boxed[0]), box_seconds, boxed[1])
    return labels, preds_out, image_scores, extra, seconds


def _check_kind_queues(issues: list, per_kind: dict[str, list]) -> None:
    """Each kind's queue holds every item with a score for that kind, at that score."""
    for kind, queue in per_kind.items():
        want = {i.key: i.kind_score(kind) for i in issues if i.kind_score(kind) > 0}
        got = {i.key: i.score for i in queue if i.score > 0}
        if want.keys() != got.keys() or any(abs(want[k] - got[k]) > 1e-9 for k in want):
            raise AssertionError(f"the {kind} queue differs from the scores of the one queue")


# --- cleanlab ---------------------------------------------------------------------------------


def _cleanlab_inputs(scene: Scene) -> tuple[list[dict], list[list[np.ndarray]], list[list[int]]]:
    labels, predictions, order = [], [], []
    for img in sorted(scene.labels):
        lab = scene.labels[img]
        labels.append(
            {
                "bboxes": np.array([b for _, b, _ in lab], dtype=float).reshape(-1, 4),
                "labels": np.array([c - 1 for c, _, _ in lab], dtype=int),
                "image_name": f"img{img:05d}.png",
            }
        )
        per_class, idx = [], []
        for cat in (1, 2):
            rows = [(k, b, s) for k, (c, b, s) in enumerate(scene.preds[img]) if c == cat]
            per_class.append(np.array([[*b, s] for _, b, s in rows], dtype=float).reshape(-1, 5))
            idx.extend(k for k, _, _ in rows)
        predictions.append(per_class)
        order.append(idx)
    return labels, predictions, order


def run_cleanlab(scene: Scene, high: float | None = None) -> tuple[dict, dict, dict, dict, float]:
    """cleanlab's per-box and per-image scores of the same labels and predictions.

    ``high``: its ``high_probability_threshold`` (default its own, 0.95): only predictions scoring
    above it can be overlooked objects or swapped classes. Per image (``get_label_quality_scores``,
    ``find_label_issues``) always with its defaults: they take no such parameter.
    """
    from cleanlab.object_detection.filter import find_label_issues as cl_find
    from cleanlab.object_detection.rank import (
        compute_badloc_box_scores,
        compute_overlooked_box_scores,
        compute_swap_box_scores,
        get_label_quality_scores,
    )

    labels, predictions, order = _cleanlab_inputs(scene)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        badloc = compute_badloc_box_scores(labels=labels, predictions=predictions)
        swap = compute_swap_box_scores(
            labels=labels, predictions=predictions, high_probability_threshold=high
        )
        overlooked = compute_overlooked_box_scores(
            labels=labels, predictions=predictions, high_probability_threshold=high
        )
        quality = get_label_quality_scores(labels, predictions, verbose=False)
        flagged = cl_find(labels, predictions)
    seconds = time.perf_counter() - start
    images = sorted(scene.labels)
    lab_scores: dict[tuple[int, int], tuple[float, str, dict[str, float]]] = {}
    pred_scores: dict[tuple[int, int], float] = {}
    for n, img in enumerate(images):
        for k in range(len(scene.labels[img])):
            bad, sw = 1.0 - float(badloc[n][k]), 1.0 - float(swap[n][k])
            kind = "misplaced" if bad >= sw else "wrong_class"
            # no subtype of its own says "spurious": its label score (the worse of the two) stands in
            per_kind = {"misplaced": bad, "wrong_class": sw, "spurious": max(bad, sw)}
            lab_scores[(img, k)] = (max(bad, sw), kind, per_kind)
        for pos, k in enumerate(order[n]):
            q = float(overlooked[n][pos])
            pred_scores[(img, k)] = 0.0 if np.isnan(q) else 1.0 - q
    image_scores = {img: 1.0 - float(quality[n]) for n, img in enumerate(images)}
    flags = {img: bool(flagged[n]) for n, img in enumerate(images)}
    return lab_scores, pred_scores, image_scores, {"flags": flags}, seconds


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One ranked item: a label or a prediction (a dropped object's best one, or any other)."""

    score: float  # the method's issue score (its queue order)
    truth: str | None  # the planted error it is, None: correct label / prediction of nothing dropped
    named: str  # the kind the method called it
    kind_scores: dict[str, float]  # the method's score for each kind
    is_label: bool


def items(scene: Scene, lab_scores: dict, pred_scores: dict) -> list[Item]:
    """Every ranked item of one method's output."""
    out: list[Item] = []
    for img, labs in scene.labels.items():
        for k, (_c, _b, truth) in enumerate(labs):
            score, kind, per_kind = lab_scores.get((img, k), (0.0, "", {}))
            out.append(Item(score, None if truth == "correct" else truth, kind, per_kind, True))
    # predictions: the best-ranked one per dropped object is that object's item
    dropped_by_image: dict[int, list[int]] = {}
    for n, (img, _c, _b) in enumerate(scene.dropped):
        dropped_by_image.setdefault(img, []).append(n)
    best: dict[int, float] = {}
    for img, preds in scene.preds.items():
        drops = dropped_by_image.get(img, [])
        boxes = np.array([scene.dropped[n][2] for n in drops]).reshape(-1, 4)
        for k, (_c, box, _s) in enumerate(preds):
            score = pred_scores.get((img, k), 0.0)
            if len(drops):
                ious = box_iou(box[None], boxes)[0]
                j = int(np.argmax(ious))
                if ious[j] >= 0.5:
                    best[drops[j]] = max(best.get(drops[j], 0.0), score)
                    continue
            out.append(Item(score, None, "missing", {"missing": score}, False))
    for n in range(len(scene.dropped)):
        out.append(Item(best.get(n, 0.0), "missing", "missing", {"missing": best.get(n, 0.0)}, False))
    return out


def ranking_metrics(rows: list[tuple[float, bool]]) -> tuple[float, float, float, int]:
    """Precision of the top K, recall within the top 2K, ROC AUC, K (K = positives)."""
    from sklearn.metrics import roc_auc_score

    pos = sum(1 for _, y in rows if y)
    if pos == 0 or pos == len(rows):
        return float("nan"), float("nan"), float("nan"), pos
    # ties broken against the method (a positive tied with negatives is ranked after them)
    ordered = sorted(rows, key=lambda r: (-r[0], r[1]))
    top = [y for _, y in ordered]
    precision = sum(top[:pos]) / pos
    recall = sum(top[: 2 * pos]) / pos
    auc = roc_auc_score([int(y) for _, y in rows], [s for s, _ in rows])
    return precision, recall, float(auc), pos


def evaluate(scene: Scene, lab: dict, pred: dict) -> dict[str, dict[str, tuple[float, float, float, int]]]:
    """Ranking metrics of one method: ``"queue"`` and ``"kind"`` (see :func:`main`)."""
    rows = items(scene, lab, pred)
    queue, by_kind = {}, {}
    for kind in KINDS:
        # the queue: this kind's errors among every correct item, in the method's one order
        queue[kind] = ranking_metrics([(r.score, r.truth == kind) for r in rows if r.truth in (None, kind)])
        # the detector of this kind: its own score for it, over the items it can be about
        same_type = [r for r in rows if r.is_label == (kind != "missing") and r.truth in (None, kind)]
        by_kind[kind] = ranking_metrics([(r.kind_scores.get(kind, 0.0), r.truth == kind) for r in same_type])
    queue["overall"] = ranking_metrics([(r.score, r.truth is not None) for r in rows])
    by_kind["overall"] = queue["overall"]
    return {"queue": queue, "kind": by_kind}


def kind_accuracy(scene: Scene, lab: dict, pred: dict) -> float:
    """Of the planted errors in the method's top 2N, the share whose kind it named right."""
    rows = items(scene, lab, pred)
    n = sum(1 for r in rows if r.truth is not None)
    top = sorted(rows, key=lambda r: (-r.score, r.truth is not None))[: 2 * n]
    found = [r for r in top if r.truth is not None]
    return sum(1 for r in found if r.truth == r.named) / max(len(found), 1)


def image_metrics(
    scene: Scene, scores: dict[int, float], flags: dict[int, bool]
) -> tuple[float, float, float]:
    """Image-level ROC AUC, and precision / recall of the images flagged."""
    from sklearn.metrics import roc_auc_score

    bad = {img for img, labs in scene.labels.items() if any(t != "correct" for _, _, t in labs)}
    bad |= {img for img, _, _ in scene.dropped}
    imgs = sorted(scene.labels)
    y = [int(i in bad) for i in imgs]
    auc = roc_auc_score(y, [scores.get(i, 0.0) for i in imgs]) if 0 < sum(y) < len(y) else float("nan")
    tp = sum(1 for i in imgs if flags.get(i) and i in bad)
    nflag = sum(1 for i in imgs if flags.get(i))
    return float(auc), tp / max(nflag, 1), tp / max(len(bad), 1)


METHODS = ("ours", "cleanlab", "cleanlab-0.5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--demo-model",
        action="store_true",
        help="the demo dataset and the shipped demo model's own predictions instead of the jittered model",
    )
    parser.add_argument(
        "--photos",
        action="store_true",
        help="the jittered model on rendered fuse-box photos (512 px): ours+boxes asks the demo model's "
        "interactive head about label boxes",
    )
    args = parser.parse_args()
    cached: list = []
    demo_size = (WIDTH, HEIGHT)
    paths: list[Path] = []
    segmenter = None
    methods = METHODS
    photos: Path | None = None
    if args.demo_model or args.photos:
        from fusereview.demo.project import demo_model_dir
        from fusereview.models import load_model
        from fusereview.models.interactive import load_interactive

        workdir = Path(tempfile.mkdtemp(prefix="bench-label-issues-"))
        if args.demo_model:
            start = time.perf_counter()
            cached, demo_size, paths = demo_predictions(workdir)
            print(f"demo model predictions: {time.perf_counter() - start:.0f} s", flush=True)
        else:
            photos = workdir / "photos"
            photos.mkdir()
        # its interactive head asks about the labels no detection supports (there are photos)
        segmenter = load_interactive(demo_model_dir(), load_model(demo_model_dir()), device="cpu")
        methods = ("ours", "ours+boxes", *METHODS[1:])
    keys = (*KINDS, "overall")
    acc: dict[str, dict[str, dict[str, list]]] = {
        view: {m: {k: [] for k in keys} for m in methods} for view in ("queue", "kind")
    }
    img_rows: dict[str, list[tuple[float, float, float]]] = {"ours": [], "cleanlab": []}
    kinds_named: list[float] = []
    times: dict[str, list[float]] = {"ours": [], "cleanlab": [], "boxes": []}
    asked: list[int] = []
    sizes = []
    for seed in args.seeds:
        scene = (
            demo_scene(cached, demo_size, seed, paths)
            if args.demo_model
            else make_scene(args.images, seed, photos)
        )
        sizes.append(
            (
                sum(len(v) for v in scene.labels.values()),
                sum(len(v) for v in scene.preds.values()),
                sum(1 for v in scene.labels.values() for _, _, t in v if t != "correct") + len(scene.dropped),
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            ours_lab, ours_pred, ours_img, ours_extra, t_ours = run_ours(scene, Path(tmp), segmenter)
        cl_lab, cl_pred, cl_img, extra, t_cl = run_cleanlab(scene)
        cl5_lab, cl5_pred, _, _, _ = run_cleanlab(scene, high=0.5)
        times["ours"].append(t_ours)
        times["cleanlab"].append(t_cl)
        runs = [
            ("ours", ours_lab, ours_pred),
            ("cleanlab", cl_lab, cl_pred),
            ("cleanlab-0.5", cl5_lab, cl5_pred),
        ]
        if "boxes" in ours_extra:
            box_lab, box_pred, t_boxes, n_asked = ours_extra["boxes"]
            runs.insert(1, ("ours+boxes", box_lab, box_pred))
            times["boxes"].append(t_boxes)
            asked.append(n_asked)
        for name, lab, pred in runs:
            for view, table in evaluate(scene, lab, pred).items():
                for k, v in table.items():
                    acc[view][name][k].append(v)
        kinds_named.append(kind_accuracy(scene, ours_lab, ours_pred))
        ours_flags = {i: s >= 0.5 for i, s in ours_img.items()}
        img_rows["ours"].append(image_metrics(scene, ours_img, ours_flags))
        img_rows["cleanlab"].append(image_metrics(scene, cl_img, extra["flags"]))

    def mean(values: list[float]) -> str:
        return f"{np.nanmean(values):.3f}" + (f" ±{np.nanstd(values):.3f}" if len(values) > 1 else "")

    labels_n, preds_n, errors_n = (int(np.mean(c)) for c in zip(*sizes, strict=True))
    what = (
        "the demo dataset, the demo model's predictions"
        if args.demo_model
        else f"{args.images} rendered photos, the jittered model"
        if args.photos
        else f"{args.images} images"
    )
    print(
        f"label issues on planted errors: {what} x {len(args.seeds)} seeds "
        f"({labels_n} labels, {preds_n} predictions, {errors_n} planted errors per seed); "
        f"{platform.machine()}, Python {platform.python_version()}; mean ± sd over seeds"
    )
    titles = {
        "queue": "the queue (one ranking by issue score; per kind: that kind's errors among all correct items)",
        "kind": "each kind's own queue (Shift+L in the window, --kind in the CLI: every label scored for "
        "that kind; labels for spurious / misplaced / wrong class, predictions for missing)",
    }
    for view in ("queue", "kind"):
        print()
        print(f"ranked by {titles[view]}")
        print("| kind | K | method | precision@K | recall@2K | ROC AUC |")
        print("|---|---|---|---|---|---|")
        for k in keys if view == "queue" else KINDS:
            for name in methods:
                p, r, a, n = zip(*acc[view][name][k], strict=True)
                print(
                    f"| {k} | {int(np.mean(n))} | {name} | {mean(list(p))} | {mean(list(r))} | {mean(list(a))} |"
                )
    print()
    print("| images | method | ROC AUC | flagged precision | flagged recall |")
    print("|---|---|---|---|---|")
    for name, how in (("ours", "ours (image score >= 0.5)"), ("cleanlab", "cleanlab (find_label_issues)")):
        a, p, r = zip(*img_rows[name], strict=True)
        print(f"| all | {how} | {mean(list(a))} | {mean(list(p))} | {mean(list(r))} |")
    print()
    print(f"ours named the kind right for {mean(kinds_named)} of the planted errors in its top 2K")
    print(
        f"time to score (s): ours {mean(times['ours'])} (from the project database), "
        f"cleanlab {mean(times['cleanlab'])} (arrays in memory)"
    )
    if asked:
        print(
            f"ours+boxes: the demo model's interactive head asked about {mean([float(n) for n in asked])} label "
            f"boxes per seed (those the spurious queue lists at 0.25 or more) in {mean(times['boxes'])} s"
        )


if __name__ == "__main__":
    main()
