"""Toy data for engine tests and benchmarks: bright shapes on a noisy dark background.

Much easier than the synthetic fuse boxes (``fusereview.core.synthetic``), so that a tiny model
learns it in a few hundred CPU steps — what a test of the engine's learning needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from fusereview.training.data import Sample


def toy_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[dict]]:
    """One image with 1-3 filled orange rectangles (the objects) and a grey distractor disc."""
    img = (rng.normal(40, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    cv2.circle(img, (int(cx), int(cy)), int(size * 0.06), (120, 120, 120), -1)
    anns = []
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        # rectangles never touch: two merged orange blobs would be one object to any eye
        for _try in range(20):
            w, h = rng.uniform(0.15, 0.35, 2) * size
            x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            x1, y1 = x0 + w, y0 + h
            if all(x1 + 2 < a or b + 2 < x0 or y1 + 2 < c or d + 2 < y0 for a, c, b, d in placed):
                break
        else:
            continue
        placed.append((x0, y0, x1, y1))
        colour = tuple(int(c) for c in (rng.uniform(200, 255), rng.uniform(120, 160), rng.uniform(0, 40)))
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), colour, -1)
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        poly = [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]
        anns.append(
            {
                "category_id": 1,
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "segmentation": [poly],
                "area": float((x1 - x0) * (y1 - y0)),
                "iscrowd": 0,
            }
        )
    return img, anns


def toy_samples(n: int, *, size: int = 112, seed: int = 0, first_id: int = 1) -> list[Sample]:
    """``n`` toy samples."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img, anns = toy_image(rng, size)
        out.append(Sample(img, anns, first_id + i, f"toy-{first_id + i}.png"))
    return out


def write_toy_coco(root: Path, *, train: int = 8, valid: int = 4, size: int = 112, seed: int = 0) -> Path:
    """A Roboflow-layout COCO dataset of toy images (``train/`` and ``valid/``) under ``root``."""
    root = Path(root)
    for split, n, s in (("train", train, seed), ("valid", valid, seed + 1)):
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for smp in toy_samples(n, size=size, seed=s, first_id=0):
            cv2.imwrite(str(d / smp.file_name), cv2.cvtColor(smp.image, cv2.COLOR_RGB2BGR))
            images.append({"id": smp.image_id, "file_name": smp.file_name, "width": size, "height": size})
            for a in smp.annotations:
                anns.append({**a, "id": len(anns), "image_id": smp.image_id})
        cats = [
            {"id": 0, "name": "shapes", "supercategory": "none"},
            {"id": 1, "name": "fuse neutrals", "supercategory": "shapes"},
        ]
        (d / "_annotations.coco.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": cats})
        )
    return root
