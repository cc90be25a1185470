"""Training data: annotated images → (image, prompt, boxes, masks) items at the model's resolution.

The engine's dataset takes a list of :class:`Sample` (image array + COCO-style annotations); the
adapters below build that list from a project (ground truth plus accepted / edited reviews) or from a
COCO dataset folder. Each image gives one item per category prompt: a positive item for every
category present and, for categories absent (or a few distractor phrases when the project has one
class), a negative item whose presence target is 0 — presence only learns from such negatives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from fusereview.core.errors import DatasetError, Problem

# Prompts that name nothing in a fuse-box photo: negatives for single-class projects.
DISTRACTOR_PROMPTS = ("screw", "wire", "label", "breaker", "terminal")
AUGMENTATIONS = ("none", "flip_color_scale")


@dataclass
class Sample:
    """One annotated image.

    Attributes
    ----------
    image:
        HxWx3 uint8 RGB.
    annotations:
        COCO-style dicts with ``category_id``, ``bbox`` (xywh pixels) and optional ``segmentation``.
    image_id:
        The image's id in its project / dataset.
    file_name:
        For messages.
    """

    image: np.ndarray
    annotations: list[dict[str, Any]]
    image_id: int = 0
    file_name: str = ""
    _masks: list[np.ndarray | None] | None = field(default=None, repr=False)

    def masks(self) -> list[np.ndarray | None]:
        """Full-resolution bool masks of the annotations (``None`` where there is no segmentation)."""
        if self._masks is None:
            h, w = self.image.shape[:2]
            self._masks = [_decode_segmentation(a.get("segmentation"), h, w) for a in self.annotations]
        return self._masks


def _decode_segmentation(seg: Any, h: int, w: int) -> np.ndarray | None:
    if not seg:
        return None
    if isinstance(seg, list):
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return None
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = dict(seg)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
    return mask_utils.decode(rle).astype(bool)


@dataclass
class Item:
    """One training item: an image at the model's resolution with one prompt and its targets."""

    pixels: torch.Tensor  # (3, S, S) normalised
    prompt: str
    boxes: torch.Tensor  # (n, 4) normalised xyxy
    masks: torch.Tensor  # (n, M, M) float {0,1} at the model's mask resolution
    sample_index: int
    positive: bool


class TrainDataset(torch.utils.data.Dataset):
    """Items of an epoch; rebuilt per epoch from a seed so that a resumed run sees the same items.

    Parameters
    ----------
    samples:
        The annotated images.
    categories:
        ``(category_id, prompt)`` of every category to train.
    image_size:
        Model resolution S (square).
    mask_size:
        Resolution of the model's ``pred_masks``.
    augment:
        ``"none"`` or ``"flip_color_scale"``.
    negatives_per_image:
        Distractor prompts added per image when there is only one category.
    seed:
        Base seed of augmentation and negative sampling.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        categories: Sequence[tuple[int, str]],
        *,
        image_size: int,
        mask_size: int,
        augment: str = "none",
        negatives_per_image: float = 0.5,
        seed: int = 0,
    ) -> None:
        if augment not in AUGMENTATIONS:
            raise DatasetError([Problem("train config", "augment", f"unknown augmentation {augment!r}")])
        if not samples:
            raise DatasetError([Problem("training data", "", "no training images")])
        self.samples = list(samples)
        self.categories = list(categories)
        self.image_size = image_size
        self.mask_size = mask_size
        self.augment = augment
        self.negatives_per_image = negatives_per_image
        self.seed = seed
        self.entries: list[tuple[int, int | None, str]] = []
        self._base: dict[int, np.ndarray] = {}
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Choose this epoch's (sample, category, prompt) entries."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch, 7])
        entries: list[tuple[int, int | None, str]] = []
        for i, s in enumerate(self.samples):
            present = {a["category_id"] for a in s.annotations}
            for cid, prompt in self.categories:
                if cid in present:
                    entries.append((i, cid, prompt))
                elif len(self.categories) > 1:
                    entries.append((i, cid, prompt))
        if len(self.categories) == 1 and self.negatives_per_image > 0:
            # A fixed number of negatives per epoch (which images varies): the epoch length, hence
            # the schedule, stays the same from epoch to epoch.
            n_neg = round(self.negatives_per_image * len(self.samples))
            for i in sorted(
                rng.choice(len(self.samples), size=min(n_neg, len(self.samples)), replace=False).tolist()
            ):
                entries.append((i, None, str(rng.choice(DISTRACTOR_PROMPTS))))
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def _resized(self, si: int) -> np.ndarray:
        """The sample at the model's resolution (HxWx3 float in [0, 1]) through the serving resize."""
        from fusereview.training.modelio import preprocess

        if si not in self._base:
            t = preprocess([self.samples[si].image], self.image_size)[0]
            self._base[si] = (t * 0.5 + 0.5).permute(1, 2, 0).numpy()
        return self._base[si]

    def __getitem__(self, index: int) -> Item:
        si, cid, prompt = self.entries[index]
        s = self.samples[si]
        rng = np.random.default_rng([self.seed, self.epoch, index, 11])
        anns = [
            (a, m)
            for a, m in zip(s.annotations, s.masks(), strict=True)
            if cid is not None and a["category_id"] == cid
        ]
        h, w = s.image.shape[:2]
        S, M = self.image_size, self.mask_size
        img = self._resized(si)
        # ``affine`` maps original pixels to model pixels: the resize, then the augmentation.
        resize = np.array([[S / w, 0, 0], [0, S / h, 0], [0, 0, 1]], dtype=np.float64)
        aug = np.eye(3)
        if self.augment == "flip_color_scale":
            scale = float(rng.uniform(0.75, 1.25))
            tx, ty = rng.uniform(min(0.0, S - S * scale), max(0.0, S - S * scale), size=2)
            aug = np.array([[scale, 0, tx], [0, scale, ty], [0, 0, 1]])
            if rng.random() < 0.5:
                aug = np.array([[-1, 0, S], [0, 1, 0], [0, 0, 1]]) @ aug
            img = cv2.warpAffine(
                img,
                aug[:2].astype(np.float32),
                (S, S),
                flags=cv2.INTER_LINEAR,
                borderValue=(0.45, 0.45, 0.45),
            )
            img = _colour_jitter(img, rng)
        affine = (aug @ resize)[:2]
        m_aff = (affine * (M / S)).astype(np.float32)
        boxes, masks = [], []
        for a, m in anns:
            if m is not None:
                mm = cv2.warpAffine(m.astype(np.uint8), m_aff, (M, M), flags=cv2.INTER_NEAREST)
                ys, xs = np.nonzero(
                    cv2.warpAffine(
                        m.astype(np.uint8), affine.astype(np.float32), (S, S), flags=cv2.INTER_NEAREST
                    )
                )
                if len(xs) == 0:
                    continue
                box = [xs.min() / S, ys.min() / S, (xs.max() + 1) / S, (ys.max() + 1) / S]
            else:
                x, y, bw, bh = a["bbox"]
                pts = np.array([[x, y, 1], [x + bw, y + bh, 1]]) @ affine.T
                x0, x1 = sorted(np.clip(pts[:, 0], 0, S))
                y0, y1 = sorted(np.clip(pts[:, 1], 0, S))
                if x1 - x0 < 1 or y1 - y0 < 1:
                    continue
                box = [x0 / S, y0 / S, x1 / S, y1 / S]
                mm = np.zeros((M, M), np.uint8)
                mm[int(y0 * M / S) : int(np.ceil(y1 * M / S)), int(x0 * M / S) : int(np.ceil(x1 * M / S))] = 1
            boxes.append(box)
            masks.append(mm)
        pixels = (torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() - 0.5) / 0.5
        return Item(
            pixels=pixels,
            prompt=prompt,
            boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            masks=torch.from_numpy(np.stack(masks).astype(np.float32)) if masks else torch.zeros(0, M, M),
            sample_index=si,
            positive=bool(boxes),
        )


def _colour_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation jitter of an HxWx3 float image in [0, 1]."""
    img = image * rng.uniform(0.8, 1.2)
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.8, 1.2) + mean
    grey = img.mean(axis=2, keepdims=True)
    img = (img - grey) * rng.uniform(0.8, 1.2) + grey
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def collate(items: list[Item]) -> dict[str, Any]:
    """Stack items into a batch (targets stay per-item lists: their lengths differ)."""
    return {
        "pixels": torch.stack([it.pixels for it in items]),
        "prompts": [it.prompt for it in items],
        "boxes": [it.boxes for it in items],
        "masks": [it.masks for it in items],
        "sample_index": [it.sample_index for it in items],
        "positive": torch.tensor([it.positive for it in items], dtype=torch.float32),
    }


# --------------------------------------------------------------------------- adapters


def samples_from_project(project: Any, split: str = "train") -> tuple[list[Sample], list[tuple[int, str]]]:
    """Samples of a project's split: ground truth plus accepted / edited reviewed annotations.

    Returns the samples and the ``(category_id, prompt)`` list of the project's categories.
    """
    samples = []
    for rec in project.images(split):
        anns = [
            {"category_id": a.category_id, "bbox": list(a.bbox), "segmentation": a.segmentation, "id": a.id}
            for a in project.annotations(image_id=rec.id)
        ]
        samples.append(
            Sample(
                _load_image(project.image_path(rec.id), rec.width, rec.height), anns, rec.id, rec.file_name
            )
        )
    cats = [(c.id, c.prompt or c.name) for c in project.categories()]
    return samples, cats


def _load_image(path: Path, width: int | None, height: int | None) -> np.ndarray:
    """The image as the annotations see it: EXIF orientation applied only when the stored size
    says the annotations were made on the rotated image (exactly as review and prediction load it)."""
    from fusereview.core.images import load_image

    size = (int(width), int(height)) if width and height else None
    return load_image(path, expected_size=size)


def find_split_json(dataset_dir: Path, split: str) -> Path | None:
    """The COCO json of a split of a Roboflow-layout folder (``valid`` also found as ``val``)."""
    names = [split] + (["val"] if split == "valid" else [])
    for name in names:
        d = Path(dataset_dir) / name
        if d.is_dir():
            hits = sorted(d.glob("*.json"))
            if hits:
                return hits[0]
    return None


def samples_from_coco(
    json_path: Path, image_dir: Path | None = None
) -> tuple[list[Sample], list[tuple[int, str]], dict]:
    """Samples of one COCO json (images resolved beside it), its real categories and the parsed json.

    Roboflow's placeholder category (id 0 with no annotations, supercategory ``none``) is skipped.
    """
    json_path = Path(json_path)
    image_dir = Path(image_dir) if image_dir else json_path.parent
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError([Problem(str(json_path), "", f"cannot read COCO json: {exc}")]) from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError([Problem(str(json_path), key, "missing or not a list")])
    used = {a["category_id"] for a in data["annotations"]}
    cats = [
        (c["id"], c["name"])
        for c in data["categories"]
        if c["id"] in used or c.get("supercategory") != "none"
    ]
    by_image: dict[int, list[dict]] = {}
    for i, a in enumerate(data["annotations"]):
        if "bbox" not in a or len(a["bbox"]) != 4:
            raise DatasetError(
                [Problem(str(json_path), f"annotations[{i}].bbox", "missing or not 4 numbers")]
            )
        by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for im in data["images"]:
        path = (image_dir / im["file_name"]).resolve()
        if image_dir.resolve() not in path.parents:
            raise DatasetError(
                [Problem(str(json_path), f"images[id={im['id']}].file_name", "points outside the dataset")]
            )
        image = _load_image(path, im.get("width"), im.get("height"))
        samples.append(Sample(image, by_image.get(im["id"], []), im["id"], im["file_name"]))
    return samples, cats, data
