"""Estimate the peak memory of a configuration before launching it, on the GPU or in CPU RAM.

A back-of-the-envelope model (parameters, gradients, AdamW state, activations per token), deliberately
on the safe side; it decides whether to refuse a run or suggest a lighter preset, it is not a profiler.

Attention scores: with PyTorch's fused attention (``sdpa``, transformers' default, on the CPU and on
CUDA) a block's ``tokens x tokens`` score matrix is never held in memory; the ``eager`` kernel
materialises it (scores, softmax and their gradients: about three copies at the peak, measured on
the CPU; see ``tests/unit/test_train_memory.py``). A global ViT block at 1008 px has 5184 tokens and
16 heads: 0.86 GB per image per copy in bf16, so with ``eager`` it is counted per global block, not
spread over all blocks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from fusereview.core.errors import FusereviewError
from fusereview.training.config import TrainConfig

_GIB = 2**30
#: Copies of an attention score matrix alive at the peak of a block's forward + backward (eager).
SCORE_COPIES = 3


class WillNotFitError(FusereviewError):
    """The chosen preset's estimated peak memory exceeds the card's (or the machine's RAM)."""


@dataclass
class MemoryEstimate:
    """Estimated peak memory in GiB, by part."""

    weights: float
    gradients_and_optimizer: float
    activations: float

    @property
    def total(self) -> float:
        """Sum of the parts plus 10 % for the allocator's fragmentation and 0.5 GiB for the runtime
        (the CUDA context on a GPU; the interpreter, torch and the data on the CPU)."""
        return (self.weights + self.gradients_and_optimizer + self.activations) * 1.1 + 0.5


def attention_score_bytes(vit_config: object, image_size: int, act_bytes: int) -> tuple[float, float]:
    """Bytes of one image's attention scores in a global block and in a windowed block (all heads)."""
    grid = image_size // vit_config.patch_size
    tokens = grid * grid
    heads = vit_config.num_attention_heads
    window = min(int(getattr(vit_config, "window_size", 0) or grid), grid)
    return float(tokens * tokens * heads * act_bytes), float(tokens * window * window * heads * act_bytes)


def estimate_peak_memory(
    model: nn.Module, config: TrainConfig, image_size: int, device_type: str = "cuda"
) -> MemoryEstimate:
    """Estimate for ``model`` (with its ``requires_grad`` already set by the freeze preset).

    ``device_type`` decides the activations' precision when ``config.bf16`` is ``None`` (bf16 on
    CUDA only, float32 elsewhere, as the engine does).
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bf16 = config.bf16 if config.bf16 is not None else device_type == "cuda"
    act_bytes = 2 if bf16 else 4
    weights = total * 4 / _GIB
    grads_opt = trainable * (4 + 8) / _GIB
    vit = model.vision_encoder.backbone.config
    tokens = (image_size // vit.patch_size) ** 2
    hidden = vit.hidden_size
    n_blocks = vit.num_hidden_layers
    n_global = len(getattr(vit, "global_attn_indexes", None) or [])
    b = config.batch_size
    eager = getattr(vit, "_attn_implementation", "sdpa") == "eager"
    global_scores, window_scores = attention_score_bytes(vit, image_size, act_bytes) if eager else (0.0, 0.0)
    block_base = tokens * hidden * act_bytes * 18  # attention projections, MLP (4x) and norms of a block
    vision_trains = any(p.requires_grad for p in model.vision_encoder.parameters())
    if not vision_trains:
        stored = 0.0  # no graph through the frozen tower
    elif config.activation_checkpointing:
        stored = n_blocks * tokens * hidden * act_bytes  # only each block's input is kept
    else:
        # every block keeps its activations, and with eager attention its softmax output too
        stored = n_blocks * block_base + n_global * global_scores + (n_blocks - n_global) * window_scores
    # the block being computed (or recomputed in backward) at the peak
    one_block = block_base + SCORE_COPIES * (global_scores if n_global else window_scores)
    fpn = (
        model.vision_encoder.neck.config.fpn_hidden_size
        if hasattr(model.vision_encoder.neck, "config")
        else hidden
    )
    heads = (4 * tokens) * fpn * act_bytes * 24  # FPN, pixel decoder and mask logits at 4x resolution
    activations = b * (stored + one_block + heads) / _GIB
    return MemoryEstimate(weights, grads_opt, activations)


def check_fits(estimate: MemoryEstimate, card_gb: float | None, preset: str, lighter: str | None) -> None:
    """Refuse a run whose estimate exceeds the card, suggesting ``lighter`` when there is one."""
    if card_gb is None or estimate.total <= card_gb * 0.95:
        return
    raise WillNotFitError(
        f"preset {preset!r}: estimated peak memory {estimate.total:.1f} GB exceeds the GPU's {card_gb:.1f} GB"
        + _hint(lighter)
    )


def _hint(lighter: str | None) -> str:
    return f"; try --preset {lighter}" if lighter else "; try a smaller --batch-size or a freeze preset"


def ram_gb() -> tuple[float | None, float | None]:
    """This machine's (total, available) RAM in GiB from ``/proc/meminfo``; ``None`` where unknown."""
    try:
        info = {
            line.split(":")[0]: float(line.split()[1]) * 1024 / _GIB
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.split(":")[0] in ("MemTotal", "MemAvailable")
        }
        return info.get("MemTotal"), info.get("MemAvailable")
    except (OSError, ValueError, IndexError):
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / _GIB, None
        except (ValueError, OSError, AttributeError):
            return None, None


def _own_rss_gb() -> float:
    """Resident memory of this process now (it already holds the loaded model)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / _GIB
    except (OSError, ValueError, IndexError):
        return 0.0


def check_ram(estimate: MemoryEstimate, preset: str, lighter: str | None, processes: int = 1) -> str | None:
    """The CPU counterpart of :func:`check_fits`, for ``processes`` training processes on this machine.

    Refuses (:class:`WillNotFitError`) when the estimate exceeds the machine's RAM; returns a
    warning when it exceeds what is free now (other programs hold the rest), else ``None``.
    """
    need = estimate.total * processes
    total, available = ram_gb()
    if total is not None and need > total * 0.95:
        raise WillNotFitError(
            f"preset {preset!r}: estimated peak memory {need:.1f} GB exceeds this machine's RAM {total:.1f} GB"
            + _hint(lighter)
        )
    if available is not None and need > available + _own_rss_gb() * processes:
        return (
            f"estimated peak memory {need:.1f} GB is more than the {available:.1f} GB of RAM free now: "
            "the run may swap or be killed; close other programs"
            + _hint(lighter).replace("; try", ", or try")
        )
    return None
