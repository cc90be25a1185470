"""The loss formulas, one function each, on plain tensors (no matching, no model).

:mod:`fusereview.training.losses` combines them into the two recipes (``sam3``, the one SAM3 was
trained with, and ``legacy``, fusereview's first recipe); ``docs/LOSSES.md`` is the table of which
recipe uses which term with which weight. Every function here is checked in
``tests/unit/test_loss_formulas.py`` against values written out from the formula in the test.

Conventions: logits are raw (before the sigmoid), boxes are normalised to [0, 1], ``xyxy`` unless a
name says ``cxcywh``; ``num_boxes`` is the batch's (all-reduced) number of target objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, generalized_box_iou


def sigmoid_focal(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise focal loss (RetinaNet): ``a_t * (1 - p_t)^gamma * BCE``; ``alpha < 0`` turns ``a_t`` off.

    ``targets`` may be soft (in [0, 1]); ``p_t`` is then ``p t + (1 - p)(1 - t)``.
    """
    prob = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = bce * (1 - p_t) ** gamma
    if alpha < 0:
        return loss
    return loss * (alpha * targets + (1 - alpha) * (1 - targets))


def dice_per_row(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss of each row of ``(N, P)`` logits against targets, with +1 smoothing: ``(N,)``."""
    p = logits.sigmoid()
    return 1 - (2 * (p * targets).sum(-1) + 1) / (p.sum(-1) + targets.sum(-1) + 1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of :func:`dice_per_row` (the legacy recipe's reduction)."""
    return dice_per_row(logits, targets).mean()


def cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``xyxy`` → ``(cx, cy, w, h)``."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def matched_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each matched pair (row i of ``pred`` with row i of ``target``), ``(N,)``."""
    if len(pred) == 0:
        return pred.new_zeros(0)
    return torch.diagonal(box_iou(pred, target))


def box_l1_and_giou(
    pred: torch.Tensor, target: torch.Tensor, num_boxes: float, *, l1_on: str = "cxcywh"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed L1 (on ``cxcywh`` or ``xyxy`` coordinates) and summed ``1 - GIoU`` of matched pairs, each over ``num_boxes``.

    ``pred`` and ``target`` are ``(N, 4)`` xyxy, row i matched to row i.
    """
    if len(pred) == 0:
        zero = pred.sum() * 0.0
        return zero, zero
    a, b = (cxcywh(pred), cxcywh(target)) if l1_on == "cxcywh" else (pred, target)
    l1 = (a - b).abs().sum() / num_boxes
    giou = (1 - torch.diagonal(generalized_box_iou(pred, target))).sum() / num_boxes
    return l1, giou


def iou_aware_classification(
    logits: torch.Tensor,
    matched: torch.Tensor,
    matched_iou_values: torch.Tensor,
    keep: torch.Tensor,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    pos_weight: float = 10.0,
    min_target: float = 0.01,
) -> torch.Tensor:
    """SAM3's classification loss: soft BCE on matched queries, down-weighted BCE on the rest.

    A matched query's target is ``max(min_target, p^alpha * IoU^(1-alpha))`` (``p`` its own detached
    probability, ``IoU`` of its box with its object), so the score learns to say how good the box is;
    its BCE is multiplied by ``pos_weight``. Unmatched queries learn towards 0 with BCE weighted by
    ``p^gamma`` (confident mistakes count, the many easy negatives barely). Items whose prompt has no
    object in the image (``keep`` 0) get no classification loss: the presence token answers for
    them. The result is the mean over every (item, query) entry.

    Parameters
    ----------
    logits:
        ``(B, Q)`` classification logits.
    matched:
        ``(B, Q)`` bool, the queries matched to an object.
    matched_iou_values:
        ``(B, Q)`` IoU of each matched query's box with its object (ignored where not matched).
    keep:
        ``(B,)`` 1 for items with at least one object, 0 otherwise.
    """
    logits = logits.float()
    prob = logits.sigmoid()
    pos = matched.float()
    with torch.no_grad():
        soft = (prob.detach() ** alpha * matched_iou_values.clamp(min=0).float() ** (1 - alpha)).clamp(
            min=min_target
        )
        target = torch.where(matched, soft, torch.zeros_like(soft))
    positive = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * pos * pos_weight
    negative = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    negative = negative * (1 - pos) * prob**gamma
    return ((positive + negative) * keep.float()[:, None]).mean()


def presence_loss(presence_logits: torch.Tensor, keep: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Class-balanced BCE of the presence logit against "the prompt has an object here", mean over items.

    SAM3 writes it as a focal loss with ``gamma = 0``: positives weighted ``alpha``, negatives
    ``1 - alpha`` (``alpha = 0.5``: half the BCE).
    """
    return sigmoid_focal(presence_logits.float(), keep.float(), alpha=alpha, gamma=0.0).mean()


def point_values(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values of ``(N, H, W)`` maps at ``(N, P, 2)`` points ``(x, y)`` in [0, 1]: ``(N, P)``.

    A point at a pixel's centre, ``((j + 0.5) / W, (i + 0.5) / H)``, reads that pixel exactly.
    """
    grid = coords[:, :, None, :] * 2 - 1  # grid_sample wants [-1, 1] with align_corners=False
    out = F.grid_sample(maps[:, None].float(), grid.float(), mode="bilinear", align_corners=False)
    return out[:, 0, :, 0]


def sample_mask_points(
    logits: torch.Tensor,
    num_points: int,
    *,
    oversample: float = 3.0,
    importance: float = 0.75,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Points where each mask's loss is evaluated, most of them where the prediction is unsure.

    ``num_points * oversample`` candidates are drawn uniformly; the ``importance * num_points``
    candidates with the logit closest to 0 are kept, and the rest of the points are drawn uniformly
    again (PointRend / Mask2Former's scheme, which SAM3 uses). Returns ``(N, num_points, 2)``.
    """
    n = logits.shape[0]
    dev = logits.device
    n_candidates = max(1, int(num_points * oversample))
    n_unsure = min(int(importance * num_points), n_candidates)
    with torch.no_grad():
        candidates = torch.rand(n, n_candidates, 2, device=dev, generator=generator)
        unsure = -point_values(logits.detach(), candidates).abs()
        top = unsure.topk(n_unsure, dim=1).indices
        chosen = torch.gather(candidates, 1, top[..., None].expand(-1, -1, 2))
        rest = torch.rand(n, num_points - n_unsure, 2, device=dev, generator=generator)
    return torch.cat([chosen, rest], dim=1)


def point_mask_losses(
    pred: torch.Tensor,
    target: torch.Tensor,
    coords: torch.Tensor,
    num_boxes: float,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Focal (mean over points, summed over masks) and dice (summed over masks) at the points, each over ``num_boxes``.

    ``pred`` ``(N, H, W)`` mask logits, ``target`` ``(N, h, w)`` binary masks (any resolution: both
    are read bilinearly at the same normalised points ``coords``).
    """
    if len(pred) == 0:
        zero = pred.sum() * 0.0
        return zero, zero
    p = point_values(pred, coords)
    with torch.no_grad():
        t = point_values(target, coords)
    focal = sigmoid_focal(p, t, alpha, gamma).mean(1).sum() / num_boxes
    dice = dice_per_row(p, t).sum() / num_boxes
    return focal, dice


def semantic_losses(
    logits: torch.Tensor,
    union: torch.Tensor,
    *,
    alpha: float = 0.6,
    gamma: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM3's semantic-map losses: per-item focal (mean over pixels) and dice, averaged over positive items.

    Items whose target map is empty (negative prompts) are left out: the presence token, not the
    semantic map, says that a concept is absent. ``logits`` ``(B, H, W)`` are upsampled bilinearly
    to the targets' size when they differ.
    """
    logits = logits.float()
    if logits.shape[-2:] != union.shape[-2:]:
        logits = F.interpolate(logits[:, None], size=union.shape[-2:], mode="bilinear", align_corners=False)[
            :, 0
        ]
    flat, t = logits.flatten(1), union.flatten(1).float()
    focal = sigmoid_focal(flat, t, alpha, gamma).mean(1)
    dice = dice_per_row(flat, t)
    gate = (t.amax(1) > 0).float()
    n_pos = gate.sum()
    return (focal * gate).sum() / (n_pos + 1e-6), (dice * gate).sum() / (n_pos + 1e-6)
