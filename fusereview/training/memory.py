"""Estimate the peak GPU memory of a configuration before launching it.

A back-of-the-envelope model (parameters, gradients, AdamW state, activations per token), deliberately
on the safe side; it decides whether to refuse a run or suggest a lighter preset, it is not a profiler.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fusereview.core.errors import FusereviewError
from fusereview.training.config import TrainConfig


class WillNotFitError(FusereviewError):
    """The chosen preset's estimated peak memory exceeds the card's."""


@dataclass
class MemoryEstimate:
    """Estimated peak memory in GiB, by part."""

    weights: float
    gradients_and_optimizer: float
    activations: float

    @property
    def total(self) -> float:
        """Sum of the parts plus 10 % for the allocator's fragmentation and the CUDA context."""
        return (self.weights + self.gradients_and_optimizer + self.activations) * 1.1 + 0.5


def estimate_peak_memory(model: nn.Module, config: TrainConfig, image_size: int) -> MemoryEstimate:
    """Estimate for ``model`` (with its ``requires_grad`` already set by the freeze preset)."""
    gib = 2**30
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    act_bytes = 2 if config.bf16 is not False else 4
    weights = total * 4 / gib
    grads_opt = trainable * (4 + 8) / gib
    vit = model.vision_encoder.backbone.config
    tokens = (image_size // vit.patch_size) ** 2
    hidden = vit.hidden_size
    n_blocks = vit.num_hidden_layers
    b = config.batch_size
    vision_trains = any(p.requires_grad for p in model.vision_encoder.parameters())
    if not vision_trains:
        per_block = 0.0  # no graph through the frozen tower
    elif config.activation_checkpointing:
        per_block = tokens * hidden * act_bytes  # only each block's input is kept
    else:
        per_block = tokens * hidden * act_bytes * 18  # attention, MLP (4x) and norms of a block
    one_block = (
        tokens * hidden * act_bytes * 18
        + tokens * tokens * act_bytes * vit.num_attention_heads / max(1, n_blocks)
    )
    fpn = (
        model.vision_encoder.neck.config.fpn_hidden_size
        if hasattr(model.vision_encoder.neck, "config")
        else hidden
    )
    heads = (4 * tokens) * fpn * act_bytes * 24  # FPN, pixel decoder and mask logits at 4x resolution
    activations = b * (per_block * n_blocks + one_block + heads) / gib
    return MemoryEstimate(weights, grads_opt, activations)


def check_fits(estimate: MemoryEstimate, card_gb: float | None, preset: str, lighter: str | None) -> None:
    """Refuse a run whose estimate exceeds the card, suggesting ``lighter`` when there is one."""
    if card_gb is None or estimate.total <= card_gb * 0.95:
        return
    hint = f"; try --preset {lighter}" if lighter else "; try a smaller --batch-size or a freeze preset"
    raise WillNotFitError(
        f"preset {preset!r}: estimated peak memory {estimate.total:.1f} GB exceeds the GPU's {card_gb:.1f} GB{hint}"
    )
