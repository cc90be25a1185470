"""The loss recipes as data: which terms, weights and options (no torch, so configs can check them).

:mod:`fusereview.training.losses` computes them; ``docs/LOSSES.md`` is the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from fusereview.core.errors import FusereviewError


@dataclass
class LossWeights:
    """Weights of the components in the total loss (the defaults are the ``sam3`` recipe's)."""

    ce: float = 20.0
    bbox: float = 5.0
    giou: float = 2.0
    presence: float = 20.0
    mask: float = 200.0
    dice: float = 10.0
    semantic: float = 20.0
    semantic_dice: float = 30.0
    aux: float = 1.0
    o2m: float = 2.0


@dataclass
class LossRecipe:
    """Everything that decides the loss besides the weights.

    Attributes
    ----------
    name:
        ``sam3`` or ``legacy``.
    weights:
        The component weights.
    classification:
        ``iou_aware`` (SAM3: soft target ``p^a * IoU^(1-a)``, positive weight, negatives weighted
        ``p^gamma``, mean over queries) or ``focal`` (legacy: hard-target focal summed over queries
        and divided by the number of boxes).
    box_l1_on:
        ``cxcywh`` (SAM3) or ``xyxy`` (legacy), for the L1 loss and the matcher's L1 cost.
    matcher_costs:
        ``(class, bbox, giou)`` of the Hungarian matcher; ``None``: the loss weights' ce/bbox/giou
        (the legacy recipe tied them).
    mask_points:
        Points per mask for the mask losses.
    importance_sampling:
        Choose the points where the prediction is unsure (SAM3) instead of uniformly (legacy).
    semantic:
        ``gated_focal`` (SAM3: focal + dice on positive prompts only) or ``bce_dice`` (legacy: BCE
        and dice on every item, negatives included).
    presence_alpha:
        Class balance of the presence BCE (SAM3 0.5, i.e. half the BCE; legacy ``-1``: plain BCE).
    o2m:
        Train one-to-many (DAC) queries alongside the model's own (training only).
    scale_by_sqrt_batch:
        Multiply the total by the square root of the micro-batch size, as SAM3's trainer does.
    cls_alpha, cls_gamma, pos_weight:
        Classification shape: the IoU-aware target's exponent ``alpha`` (also the focal alpha of
        the legacy loss and of the matcher's class cost), the negatives' ``p^gamma``, the weight of
        matched queries' BCE.
    o2m_matcher:
        ``alpha``, ``threshold``, ``topk`` of :class:`~fusereview.training.matcher.OneToManyMatcher`.
    """

    name: str
    weights: LossWeights
    classification: str = "iou_aware"
    box_l1_on: str = "cxcywh"
    matcher_costs: tuple[float, float, float] | None = (2.0, 5.0, 2.0)
    mask_points: int = 112 * 112
    importance_sampling: bool = True
    semantic: str = "gated_focal"
    presence_alpha: float = 0.5
    o2m: bool = True
    scale_by_sqrt_batch: bool = True
    cls_alpha: float = 0.25
    cls_gamma: float = 2.0
    pos_weight: float = 10.0
    o2m_matcher: dict[str, float] = field(default_factory=lambda: {"alpha": 0.3, "threshold": 0.4, "topk": 4})


RECIPES: dict[str, LossRecipe] = {
    "sam3": LossRecipe("sam3", LossWeights()),
    "legacy": LossRecipe(
        "legacy",
        LossWeights(
            ce=2.0,
            bbox=5.0,
            giou=2.0,
            presence=1.0,
            mask=20.0,
            dice=1.0,
            semantic=1.0,
            semantic_dice=1.0,
            aux=1.0,
            o2m=0.0,
        ),
        classification="focal",
        box_l1_on="xyxy",
        matcher_costs=None,
        mask_points=4096,
        importance_sampling=False,
        semantic="bce_dice",
        presence_alpha=-1.0,
        o2m=False,
        scale_by_sqrt_batch=False,
    ),
}


def weight_names() -> list[str]:
    """The names ``loss_weights`` may override."""
    return [f.name for f in fields(LossWeights)]


def recipe(name: str, overrides: dict[str, float] | None = None) -> LossRecipe:
    """The named recipe with some weights overridden (by :class:`LossWeights` field name)."""
    if name not in RECIPES:
        raise FusereviewError(
            f"train config: loss_recipe: unknown {name!r} (choose from {', '.join(RECIPES)})"
        )
    base = RECIPES[name]
    return replace(base, weights=replace(base.weights, **(overrides or {})))
