"""Set-prediction losses of SAM3 fine-tuning, every component returned separately for logging.

Components (unweighted values are logged, the total is the weighted sum):
``loss_ce`` focal classification of positive prompts' queries, ``loss_bbox`` L1 of matched boxes,
``loss_giou`` 1 - GIoU, ``loss_presence`` BCE of the presence token (target 0 for negative prompts),
``loss_mask`` focal and ``loss_dice`` dice of matched masks on sampled points, ``loss_semantic``
BCE + dice of the semantic map, ``loss_aux`` the weighted class/box/presence losses of every earlier
decoder layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou

from fusereview.training.matcher import HungarianMatcher

COMPONENTS = (
    "loss_ce",
    "loss_bbox",
    "loss_giou",
    "loss_presence",
    "loss_mask",
    "loss_dice",
    "loss_semantic",
    "loss_aux",
)


@dataclass
class LossWeights:
    """Weights of the components in the total loss."""

    ce: float = 2.0
    bbox: float = 5.0
    giou: float = 2.0
    presence: float = 1.0
    mask: float = 20.0
    dice: float = 1.0
    semantic: float = 1.0
    aux: float = 1.0


def sigmoid_focal(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise focal loss (RetinaNet) on logits."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    return loss * (alpha * targets + (1 - alpha) * (1 - targets))


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean dice loss over rows of ``(N, P)`` logits/targets."""
    p = logits.sigmoid()
    num = 2 * (p * targets).sum(-1) + 1
    den = p.sum(-1) + targets.sum(-1) + 1
    return (1 - num / den).mean()


class SetCriterion:
    """Match queries to targets and compute every loss component.

    Parameters
    ----------
    weights:
        Component weights.
    mask_points:
        Points sampled per mask for the mask losses (all pixels when the mask is smaller).
    """

    def __init__(self, weights: LossWeights | None = None, mask_points: int = 4096) -> None:
        self.w = weights or LossWeights()
        self.matcher = HungarianMatcher(cost_class=self.w.ce, cost_bbox=self.w.bbox, cost_giou=self.w.giou)
        self.mask_points = mask_points

    def _layer_losses(self, logits, boxes, presence, targets, positive, num_boxes):
        """Class, box and presence losses of one decoder layer; returns (losses, matches)."""
        matches = self.matcher(logits.detach(), boxes.detach(), targets)
        cls_t = torch.zeros_like(logits, dtype=torch.float32)
        src_b, src_q, tgt = [], [], []
        for b, (qi, ti) in enumerate(matches):
            cls_t[b, qi] = 1.0
            src_b.append(torch.full_like(qi, b))
            src_q.append(qi)
            tgt.append(targets[b][ti])
        sb, sq = torch.cat(src_b), torch.cat(src_q)
        # Classification trains only on positive prompts: on a negative prompt the presence
        # token is what says "absent" (SAM3's decoupling of recognition and localisation).
        focal = sigmoid_focal(logits.float(), cls_t) * positive[:, None]
        losses = {"loss_ce": focal.sum() / num_boxes}
        if len(sb):
            pb = boxes[sb, sq].float()
            tb = torch.cat(tgt).to(pb)
            losses["loss_bbox"] = F.l1_loss(pb, tb, reduction="sum") / num_boxes
            losses["loss_giou"] = (1 - torch.diag(generalized_box_iou(pb, tb))).sum() / num_boxes
        else:
            losses["loss_bbox"] = boxes.sum() * 0.0
            losses["loss_giou"] = boxes.sum() * 0.0
        losses["loss_presence"] = F.binary_cross_entropy_with_logits(presence.float(), positive)
        return losses, matches

    def __call__(
        self, out: dict[str, torch.Tensor], batch: dict
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and the components.

        Parameters
        ----------
        out:
            ``logits (L,B,Q)``, ``boxes (L,B,Q,4)`` normalised xyxy, ``presence (L,B)``,
            ``masks (B,Q,M,M)`` and ``semantic (B,1,M,M)`` logits; layer L-1 is the model's output.
        batch:
            From :func:`fusereview.training.data.collate`.
        """
        targets = [b.to(out["boxes"].device) for b in batch["boxes"]]
        positive = batch["positive"].to(out["boxes"].device)
        num_boxes = max(1.0, float(sum(len(t) for t in targets)))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            nb = torch.tensor([num_boxes], device=out["boxes"].device)
            torch.distributed.all_reduce(nb)
            num_boxes = max(1.0, nb.item() / torch.distributed.get_world_size())
        n_layers = out["logits"].shape[0]
        comps, matches = self._layer_losses(
            out["logits"][-1], out["boxes"][-1], out["presence"][-1], targets, positive, num_boxes
        )
        aux = out["boxes"].sum() * 0.0
        for layer in range(n_layers - 1):
            la, _ = self._layer_losses(
                out["logits"][layer],
                out["boxes"][layer],
                out["presence"][layer],
                targets,
                positive,
                num_boxes,
            )
            aux = (
                aux
                + self.w.ce * la["loss_ce"]
                + self.w.bbox * la["loss_bbox"]
                + self.w.giou * la["loss_giou"]
                + self.w.presence * la["loss_presence"]
            )
        comps["loss_aux"] = aux
        comps.update(self._mask_losses(out, batch, matches, num_boxes))
        w = self.w
        total = (
            w.ce * comps["loss_ce"]
            + w.bbox * comps["loss_bbox"]
            + w.giou * comps["loss_giou"]
            + w.presence * comps["loss_presence"]
            + w.mask * comps["loss_mask"]
            + w.dice * comps["loss_dice"]
            + w.semantic * comps["loss_semantic"]
            + w.aux * comps["loss_aux"]
        )
        return total, comps

    def _mask_losses(self, out, batch, matches, num_boxes):
        pred = out["masks"]
        M = pred.shape[-1]
        dev = pred.device
        tmasks = [m.to(dev) for m in batch["masks"]]
        if any(m.shape[-1] != M for m in tmasks if m.numel()):
            tmasks = [
                F.interpolate(m[None], size=(M, M), mode="nearest")[0] if m.numel() else m.new_zeros(0, M, M)
                for m in tmasks
            ]
        n_pix = M * M
        idx = None if n_pix <= self.mask_points else torch.randint(0, n_pix, (self.mask_points,), device=dev)
        pl, tl = [], []
        for b, (qi, ti) in enumerate(matches):
            if len(qi):
                pl.append(pred[b, qi.to(dev)].flatten(1))
                tl.append(tmasks[b][ti.to(dev)].flatten(1))
        if pl:
            p, t = torch.cat(pl).float(), torch.cat(tl).float()
            if idx is not None:
                p, t = p[:, idx], t[:, idx]
            loss_mask = sigmoid_focal(p, t).mean(1).sum() / num_boxes
            loss_dice = dice_loss(p, t) * len(p) / num_boxes
        else:
            loss_mask = pred.sum() * 0.0
            loss_dice = pred.sum() * 0.0
        # Dense semantic map: the union of the prompt's objects (empty for negatives).
        sem = out["semantic"][:, 0].float()
        union = torch.stack([m.amax(0) if m.numel() else m.new_zeros(M, M) for m in tmasks])
        if union.shape[-1] != sem.shape[-1]:
            union = F.interpolate(union[:, None], size=sem.shape[-2:], mode="nearest")[:, 0]
        loss_sem = F.binary_cross_entropy_with_logits(sem, union) + dice_loss(
            sem.flatten(1), union.flatten(1)
        )
        return {"loss_mask": loss_mask, "loss_dice": loss_dice, "loss_semantic": loss_sem}
