"""Validation during training: predict the valid split, score it with COCO bbox and segm metrics."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from fusereview.training.data import Sample
from fusereview.training.forward import forward_all_layers
from fusereview.training.modelio import LoadedModel, preprocess, tokenize
from fusereview.training.runs import METRIC_NAMES


def gt_from_samples(samples: Sequence[Sample], categories: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """A COCO ground-truth dict of samples (segmentations as given, areas from masks)."""
    images, anns = [], []
    next_id = 1
    for s in samples:
        h, w = s.image.shape[:2]
        images.append({"id": s.image_id, "file_name": s.file_name, "height": h, "width": w})
        for a, m in zip(s.annotations, s.masks(), strict=True):
            seg = a.get("segmentation") or []
            area = float(m.sum()) if m is not None else float(a["bbox"][2] * a["bbox"][3])
            anns.append(
                {
                    "id": next_id,
                    "image_id": s.image_id,
                    "category_id": a["category_id"],
                    "bbox": list(a["bbox"]),
                    "segmentation": seg,
                    "area": area,
                    "iscrowd": int(a.get("iscrowd", 0)),
                }
            )
            next_id += 1
    return {
        "images": images,
        "annotations": anns,
        "categories": [{"id": c, "name": p} for c, p in categories],
    }


@torch.no_grad()
def predict_samples(
    loaded: LoadedModel,
    samples: Sequence[Sample],
    categories: Sequence[tuple[int, str]],
    *,
    device: torch.device,
    batch_size: int = 4,
    with_masks: bool = True,
    autocast_dtype: torch.dtype | None = None,
) -> list[dict[str, Any]]:
    """COCO results (``image_id, category_id, bbox, score[, segmentation]``) of every query.

    The score is the post-processor's: ``sigmoid(pred_logits) * sigmoid(presence_logits)``.
    Images are resized to the model's resolution exactly as in training.
    """
    model = loaded.model
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    try:
        for cid, prompt in categories:
            for start in range(0, len(samples), batch_size):
                chunk = samples[start : start + batch_size]
                pixels = preprocess([s.image for s in chunk], loaded.image_size).to(device)
                ids, am = tokenize(loaded.tokenizer, [prompt] * len(chunk))
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    out = forward_all_layers(
                        model, pixel_values=pixels, input_ids=ids.to(device), attention_mask=am.to(device)
                    )
                scores = (
                    (out["pred_logits"].float().sigmoid() * out["presence_logits"].float().sigmoid())
                    .cpu()
                    .numpy()
                )
                boxes = out["pred_boxes"].float().clamp(0, 1).cpu().numpy()
                masks = out["masks"].float().cpu().numpy() if with_masks else None
                for b, s in enumerate(chunk):
                    h, w = s.image.shape[:2]
                    for q in range(scores.shape[1]):
                        x0, y0, x1, y1 = boxes[b, q] * [w, h, w, h]
                        r: dict[str, Any] = {
                            "image_id": s.image_id,
                            "category_id": cid,
                            "bbox": [
                                float(x0),
                                float(y0),
                                float(max(0.0, x1 - x0)),
                                float(max(0.0, y1 - y0)),
                            ],
                            "score": float(scores[b, q]),
                        }
                        if masks is not None:
                            m = cv2.resize(masks[b, q], (w, h), interpolation=cv2.INTER_LINEAR) > 0
                            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                            rle["counts"] = rle["counts"].decode()
                            r["segmentation"] = rle
                        results.append(r)
    finally:
        model.train(was_training)
    return results


def coco_metrics(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> dict[str, float | None]:
    """The 12 COCO numbers; through ``fusereview.evaluation.evaluate`` when it is installed."""
    try:
        from fusereview.evaluation import evaluate
    except ImportError:
        return _pycocotools_metrics(gt, results, iou_type)
    return dict(evaluate(gt, results, iou_type=iou_type).values)


def _pycocotools_metrics(
    gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str
) -> dict[str, float | None]:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # Remap ids to 1..N: pycocotools treats id 0 as "no match" (Roboflow exports start at 0).
    gt = copy.deepcopy(gt)
    img_map = {im["id"]: i + 1 for i, im in enumerate(gt["images"])}
    cat_map = {c["id"]: i + 1 for i, c in enumerate(gt["categories"])}
    for im in gt["images"]:
        im["id"] = img_map[im["id"]]
    for c in gt["categories"]:
        c["id"] = cat_map[c["id"]]
    for i, a in enumerate(gt["annotations"]):
        a["id"] = i + 1
        a["image_id"] = img_map[a["image_id"]]
        a["category_id"] = cat_map[a["category_id"]]
        if iou_type == "segm" and not a.get("segmentation"):
            x, y, w, h = a["bbox"]
            a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    res = [
        dict(r, image_id=img_map[r["image_id"]], category_id=cat_map[r["category_id"]])
        for r in results
        if r["image_id"] in img_map and r["category_id"] in cat_map
    ]
    if not res or not gt["annotations"]:
        return {k: None for k in METRIC_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dt = coco.loadRes(res)
        ev = COCOeval(coco, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: (None if v < 0 else float(v)) for k, v in zip(METRIC_NAMES, ev.stats, strict=True)}


def validate(
    loaded: LoadedModel,
    samples: Sequence[Sample],
    categories: Sequence[tuple[int, str]],
    gt: dict[str, Any],
    *,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, dict[str, float | None]]:
    """``{"bbox": 12 numbers, "segm": 12 numbers}`` of the model on ``samples``."""
    results = predict_samples(loaded, samples, categories, device=device, autocast_dtype=autocast_dtype)
    return {"bbox": coco_metrics(gt, results, "bbox"), "segm": coco_metrics(gt, results, "segm")}
