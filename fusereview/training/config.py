"""The training configuration (what ``config.json`` of a run holds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from fusereview.core.errors import FusereviewError


@dataclass
class TrainConfig:
    """Everything that decides a training run.

    Attributes
    ----------
    preset:
        The preset the values came from (``customer``, ``fast``, ``tiny`` or ``custom``).
    epochs, batch_size, lr, weight_decay, layer_decay:
        Optimisation; ``layer_decay`` scales the ViT's learning rate down per block towards the input.
    warmup_epochs, schedule:
        Linear warmup, then ``cosine`` or ``inverse_sqrt``.
    image_size:
        Model resolution (``None``: the model's own).
    freeze:
        ``full``, ``freeze_text``, ``freeze_vision_text`` or ``heads_only``.
    eval_every:
        Validate every N epochs (and after the last).
    augment:
        ``none`` or ``flip_color_scale``.
    grad_clip, grad_accum:
        Max gradient norm (0: off), micro-batches per optimizer step.
    activation_checkpointing, feature_cache:
        Recompute ViT activations in backward; cache frozen vision features once per image.
    bf16:
        Autocast in bfloat16 (``None``: on CUDA only).
    negatives_per_image:
        Distractor prompts per image in single-class projects (presence targets 0).
    export_dtype:
        ``float32`` or ``bfloat16`` of the ``best`` export.
    dropout:
        Override every dropout probability of the model (``None``: keep the model's).
    max_steps:
        Stop after this many optimizer steps (``None``: all epochs) — for tests and benchmarks.
    seed, device, log_every:
        Reproducibility, ``cpu``/``cuda``/``None`` (auto), metrics line every N steps.
    loss_recipe:
        ``sam3`` (the loss SAM3 was trained with) or ``legacy`` (fusereview's first recipe, for tiny
        models trained from scratch); see ``docs/LOSSES.md``.
    loss_weights:
        Overrides of the recipe's :class:`fusereview.training.losses.LossWeights` by field name (``{"dice": 5}``).
    """

    preset: str = "custom"
    epochs: int = 50
    batch_size: int = 2
    lr: float = 5e-5
    weight_decay: float = 0.05
    layer_decay: float = 0.9
    warmup_epochs: float = 5.0
    schedule: str = "cosine"
    image_size: int | None = None
    freeze: str = "full"
    eval_every: int = 5
    augment: str = "flip_color_scale"
    grad_clip: float = 0.1
    grad_accum: int = 1
    activation_checkpointing: bool = False
    feature_cache: bool = False
    bf16: bool | None = None
    negatives_per_image: float = 0.5
    export_dtype: str = "float32"
    max_steps: int | None = None
    dropout: float | None = None
    seed: int = 0
    device: str | None = None
    log_every: int = 1
    loss_recipe: str = "sam3"
    loss_weights: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys (``model_spec``, ``project``...) are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        # a run folder written before loss recipes existed was trained with the first recipe
        values.setdefault("loss_recipe", "legacy")
        return cls(**values)

    def check(self) -> None:
        """Refuse values that cannot train, naming the field."""
        bad = []
        if self.epochs < 1:
            bad.append(("epochs", "must be >= 1"))
        if self.batch_size < 1:
            bad.append(("batch_size", "must be >= 1"))
        if not self.lr > 0:
            bad.append(("lr", "must be > 0"))
        if self.grad_accum < 1:
            bad.append(("grad_accum", "must be >= 1"))
        if self.eval_every < 1:
            bad.append(("eval_every", "must be >= 1"))
        if self.export_dtype not in ("float32", "bfloat16"):
            bad.append(("export_dtype", "must be float32 or bfloat16"))
        from fusereview.training.recipes import RECIPES, weight_names

        if self.loss_recipe not in RECIPES:
            bad.append(("loss_recipe", f"unknown {self.loss_recipe!r} (choose from {', '.join(RECIPES)})"))
        if self.loss_weights:
            known = set(weight_names())
            for k, v in self.loss_weights.items():
                if k not in known or not isinstance(v, (int, float)) or v < 0:
                    bad.append(
                        (f"loss_weights.{k}", f"unknown or negative (known: {', '.join(sorted(known))})")
                    )
        if self.image_size is not None and self.image_size % 14:
            bad.append(("image_size", "must be a multiple of the patch size 14"))
        if bad:
            raise FusereviewError("train config: " + "; ".join(f"{k}: {m}" for k, m in bad))
