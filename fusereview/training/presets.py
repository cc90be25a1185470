"""Named training presets and the peak-memory check done before a run starts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fusereview.core.errors import FusereviewError
from fusereview.training.config import TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    # The customer's recipe: full fine-tuning at SAM3's native resolution.
    "customer": {
        "lr": 5e-5,
        "warmup_epochs": 5,
        "epochs": 50,
        "batch_size": 2,
        # None = the model's own resolution: 1008 px for SAM3 (the customer's), 224 for the demo
        # model; a preset that forced 1008 would refuse every smaller model.
        "image_size": None,
        "eval_every": 5,
        "freeze": "full",
        "augment": "flip_color_scale",
        "activation_checkpointing": True,
        "loss_recipe": "sam3",
    },
    # Vision and text towers frozen, their features computed once: minutes instead of hours.
    "fast": {
        "lr": 1e-4,
        "warmup_epochs": 2,
        "epochs": 50,
        "batch_size": 2,
        "image_size": None,
        "eval_every": 5,
        "freeze": "freeze_vision_text",
        "augment": "none",
        "feature_cache": True,
        "loss_recipe": "sam3",
    },
    # The tiny models of tests and the demo (trained from scratch, so a high learning rate).
    "tiny": {
        "lr": 6e-4,
        "warmup_epochs": 1,
        "epochs": 20,
        "batch_size": 8,
        "image_size": None,
        "eval_every": 5,
        "freeze": "full",
        "augment": "flip_color_scale",
        "grad_clip": 1.0,
        "loss_recipe": "legacy",
    },
}
LIGHTER = {"customer": "fast", "fast": None, "tiny": None}

#: What each preset means, in a user's words (the GUI's preset box and ``train --help`` show it).
PRESET_HELP: dict[str, str] = {
    "customer": "full fine-tuning at the model's resolution, 50 epochs, batch 2, SAM3's loss: "
    "the recipe the customer's 80.9% mAP came from (hours on a 24 GB GPU)",
    "fast": "vision and text towers frozen and their features computed once, 50 epochs: "
    "minutes on a GPU, a few on a laptop CPU for the demo",
    "tiny": "from scratch with a high learning rate, for the tiny test and demo models only",
}


def preset_config(name: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a preset, with ``overrides`` (``None`` values are ignored)."""
    if name not in PRESETS:
        raise FusereviewError(f"--preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    cfg = replace(TrainConfig(), preset=name, **PRESETS[name])
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
