"""Freezing presets, AdamW parameter groups with layer-wise decay, and the learning-rate schedule."""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from fusereview.core.errors import FusereviewError

FREEZE_PRESETS = ("full", "freeze_text", "freeze_vision_text", "heads_only")
SCHEDULES = ("cosine", "inverse_sqrt")
_HEADS = (
    "dot_product_scoring.",
    "detr_decoder.box_head.",
    "detr_decoder.presence_head.",
    "detr_decoder.presence_layer_norm.",
    "detr_decoder.output_layer_norm.",
    "mask_decoder.",
)


def _tower(name: str) -> str:
    if name.startswith("vision_encoder."):
        return "vision"
    if name.startswith(("text_encoder.", "text_projection.")):
        return "text"
    return "decoder"


def apply_freeze(model: nn.Module, freeze: str) -> dict[str, int]:
    """Set ``requires_grad`` by preset; returns trainable parameter counts per tower.

    Presets: ``full`` (everything trains), ``freeze_text``, ``freeze_vision_text`` (the fast preset:
    the two big towers are fixed, so their features can be cached), ``heads_only`` (scoring, box,
    presence and mask heads).
    """
    if freeze not in FREEZE_PRESETS:
        raise FusereviewError(
            f"train config: freeze: unknown preset {freeze!r} (choose from {', '.join(FREEZE_PRESETS)})"
        )
    counts = {"vision": 0, "text": 0, "decoder": 0}
    for name, p in model.named_parameters():
        tower = _tower(name)
        if freeze == "full":
            train = True
        elif freeze == "freeze_text":
            train = tower != "text"
        elif freeze == "freeze_vision_text":
            train = tower == "decoder"
        else:
            train = name.startswith(_HEADS)
        p.requires_grad_(train)
        if train:
            counts[tower] += p.numel()
    return counts


def _vit_depth(name: str, n_layers: int) -> int:
    """Depth of a vision parameter for layer-wise decay: embeddings 0, block i → i+1, neck n+1."""
    m = re.search(r"backbone\.layers\.(\d+)\.", name)
    if m:
        return int(m.group(1)) + 1
    if "backbone.embeddings" in name:
        return 0
    return n_layers + 1


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, *, layer_decay: float = 0.9, text_lr_mult: float = 1.0
) -> list[dict]:
    """AdamW groups: vision (layer-wise decayed lr), text, decoder/heads; no weight decay on norms and biases."""
    n_vit = len(model.vision_encoder.backbone.layers)
    groups: dict[tuple[str, float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        tower = _tower(name)
        if tower == "vision":
            scale = layer_decay ** (n_vit + 1 - _vit_depth(name, n_vit))
        elif tower == "text":
            scale = text_lr_mult
        else:
            scale = 1.0
        wd = 0.0 if p.ndim <= 1 or "embed" in name or "norm" in name else weight_decay
        groups.setdefault((tower, scale, wd), []).append(p)
    return [
        {
            "params": ps,
            "lr": lr * scale,
            "initial_lr": lr * scale,
            "weight_decay": wd,
            "name": f"{tower}:{scale:.3g}:wd{wd:g}",
        }
        for (tower, scale, wd), ps in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2]))
    ]


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, *, layer_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW over :func:`param_groups`; the fused kernel on CUDA."""
    groups = param_groups(model, lr, weight_decay, layer_decay=layer_decay)
    if not groups:
        raise FusereviewError("train config: freeze: nothing left to train")
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")


def lr_factor(
    step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_ratio: float = 0.01
) -> float:
    """Multiplier of the base learning rate at ``step``: linear warmup, then cosine or inverse square root."""
    if schedule not in SCHEDULES:
        raise FusereviewError(
            f"train config: schedule: unknown {schedule!r} (choose from {', '.join(SCHEDULES)})"
        )
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return math.sqrt(max(1, warmup_steps) / max(1, step + 1))


def build_scheduler(
    opt: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, schedule: str
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` of :func:`lr_factor` (its state resumes exactly)."""
    lr_factor(0, warmup_steps=warmup_steps, total_steps=total_steps, schedule=schedule)  # validates the name
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup_steps=warmup_steps, total_steps=total_steps, schedule=schedule)
    )
