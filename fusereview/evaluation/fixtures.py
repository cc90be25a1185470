"""Synthetic ground truth and results with known structure, for tests and the benchmark.

Objects are convex polygons of all three COCO sizes; results hold, per object, a jittered detection
(sometimes a second, lower-scoring one: a duplicate) and sometimes nothing (a miss), plus spurious
detections. Everything is seeded, so a test can rebuild exactly the same case.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def _polygon(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float) -> list[float]:
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=8))
    xs = cx + rx * np.cos(angles)
    ys = cy + ry * np.sin(angles)
    return [round(float(v), 2) for pair in zip(xs, ys, strict=True) for v in pair]


def _rle(poly: list[float], h: int, w: int) -> dict[str, Any]:
    rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def make_case(
    n_images: int = 20,
    *,
    detections_per_image: int | None = None,
    seed: int = 0,
    id_start: int = 0,
    size: int = 512,
    n_categories: int = 1,
    with_masks: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build ``(gt, results)``.

    Parameters
    ----------
    n_images:
        Images in the ground truth.
    detections_per_image:
        Pad (with spurious detections) or cut each image's detections to this many; ``None`` keeps
        the natural count.
    seed:
        Random seed.
    id_start:
        First image, annotation and category id (0 reproduces Roboflow's numbering).
    size:
        Image width and height.
    n_categories:
        Number of categories.
    with_masks:
        Give results an RLE ``segmentation`` (needed for segm evaluation).
    """
    rng = np.random.default_rng(seed)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    categories = [
        {"id": id_start + c, "name": f"class{c}", "supercategory": "none"} for c in range(n_categories)
    ]
    # Radii of small (area < 32^2), medium and large objects.
    radii = ((5.0, 14.0), (20.0, 40.0), (60.0, 110.0))
    for i in range(n_images):
        image_id = id_start + i
        images.append({"id": image_id, "file_name": f"img_{i:05d}.jpg", "width": size, "height": size})
        dets: list[dict[str, Any]] = []
        for _ in range(int(rng.integers(1, 7))):
            lo, hi = radii[int(rng.integers(0, 3))]
            rx, ry = rng.uniform(lo, hi, size=2)
            cx = rng.uniform(rx + 1, size - rx - 1)
            cy = rng.uniform(ry + 1, size - ry - 1)
            cat = id_start + int(rng.integers(0, n_categories))
            poly = _polygon(rng, cx, cy, rx, ry)
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], size, size))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            annotations.append(
                {
                    "id": id_start + len(annotations),
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": float(mask_utils.area(rle)),
                    "segmentation": [poly],
                    "iscrowd": 0,
                }
            )
            if rng.random() < 0.15:  # a miss
                continue
            copies = 2 if rng.random() < 0.1 else 1  # sometimes a duplicate
            for c in range(copies):
                jx, jy = rng.normal(0, 0.08, size=2) * np.array([rx, ry])
                dpoly = _polygon(
                    rng, cx + jx, cy + jy, rx * rng.uniform(0.85, 1.15), ry * rng.uniform(0.85, 1.15)
                )
                dets.append(
                    _detection(dpoly, image_id, cat, float(rng.uniform(0.3, 1.0)) * (0.8 if c else 1), size)
                )
        n_extra = int(rng.integers(0, 3))
        if detections_per_image is not None:
            n_extra = max(0, detections_per_image - len(dets))
        for _ in range(n_extra):
            r = rng.uniform(6, 60)
            cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
            cat = id_start + int(rng.integers(0, n_categories))
            dets.append(
                _detection(_polygon(rng, cx, cy, r, r), image_id, cat, float(rng.uniform(0.0, 0.7)), size)
            )
        if detections_per_image is not None:
            dets = dets[:detections_per_image]
        results.extend(dets)
    if not with_masks:
        for r in results:
            r.pop("segmentation", None)
    gt = {"images": images, "categories": categories, "annotations": annotations}
    return gt, results


def _detection(poly: list[float], image_id: int, cat: int, score: float, size: int) -> dict[str, Any]:
    rle = _rle(poly, size, size)
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    return {
        "image_id": image_id,
        "category_id": cat,
        "bbox": [x, y, w, h],
        "score": round(score, 4),
        "segmentation": rle,
    }


def renumber(
    gt: dict[str, Any], results: list[dict[str, Any]], offset: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same case with every image, category and annotation id shifted by ``offset``."""
    new_gt = {
        "images": [{**im, "id": im["id"] + offset} for im in gt["images"]],
        "categories": [{**c, "id": c["id"] + offset} for c in gt["categories"]],
        "annotations": [
            {
                **a,
                "id": a["id"] + offset,
                "image_id": a["image_id"] + offset,
                "category_id": a["category_id"] + offset,
            }
            for a in gt["annotations"]
        ],
    }
    new_results = [
        {**r, "image_id": r["image_id"] + offset, "category_id": r["category_id"] + offset} for r in results
    ]
    return new_gt, new_results
