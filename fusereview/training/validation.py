"""Validation during training: predict the valid split, score it with COCO bbox and segm metrics."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch

from fusereview.evaluation import evaluate
from fusereview.models.sam3 import detections_from_outputs
from fusereview.training.data import Sample
from fusereview.training.forward import forward_all_layers
from fusereview.training.modelio import LoadedModel, preprocess, tokenize


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
        core = model.module if hasattr(model, "module") else model
        for start in range(0, len(samples), batch_size):
            chunk = samples[start : start + batch_size]
            sizes = [s.image.shape[:2] for s in chunk]
            pixels = preprocess([s.image for s in chunk], loaded.image_size).to(device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                # the vision encoder (most of the cost) once per image, as the predictor does;
                # only the prompt-dependent heads run per category
                vision = core.vision_encoder(pixels)
                for cid, prompt in categories:
                    ids, am = tokenize(loaded.tokenizer, [prompt] * len(chunk))
                    out = forward_all_layers(
                        model, vision_embeds=vision, input_ids=ids.to(device), attention_mask=am.to(device)
                    )
                    # the serving post-processor itself (every query: threshold below any score)
                    view = SimpleNamespace(
                        pred_logits=out["pred_logits"],
                        presence_logits=out["presence_logits"],
                        pred_boxes=out["pred_boxes"],
                        pred_masks=out["masks"] if with_masks else None,
                    )
                    dets_per_image = detections_from_outputs(view, sizes, -1.0, cid, prompt)
                    for s, dets in zip(chunk, dets_per_image, strict=True):
                        for d in dets:
                            x0, y0, x1, y1 = d.box
                            r: dict[str, Any] = {
                                "image_id": s.image_id,
                                "category_id": cid,
                                "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "score": d.score,
                            }
                            if d.mask is not None:
                                r["segmentation"] = d.mask
                            results.append(r)
    finally:
        model.train(was_training)
    return results


def coco_metrics(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> dict[str, float | None]:
    """The 12 COCO numbers, through :func:`fusereview.evaluation.evaluate` (ids remapped from 0).

    Box-only ground truth counts as its box for masks (``missing_masks="box"``): a dataset with
    bbox-only annotations validates instead of failing the run.
    """
    return dict(evaluate(gt, results, iou_type=iou_type, missing_masks="box").values)


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
