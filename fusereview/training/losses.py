"""Set-prediction losses of SAM3 fine-tuning: two named recipes, every component returned for logging.

``sam3`` (the default of the ``customer`` and ``fast`` presets) is the loss SAM3 itself was trained
and fine-tuned with (facebookresearch/sam3, the ``roboflow_v100_full_ft_100_images`` recipe),
rewritten here from its formulas: IoU-aware soft classification, presence BCE, L1 on ``cxcywh`` +
GIoU, importance-sampled point losses for masks, a semantic map supervised on positive prompts only,
and one-to-many (DAC) queries during training. ``legacy`` is fusereview's first recipe, kept for the
tiny models trained from scratch (``tiny`` preset, the demo model): ADR 0014 says why.
``docs/LOSSES.md`` lists every term of both with its weight and the function that computes it.

Components (logged unweighted; the total is the weighted sum): ``loss_ce`` classification,
``loss_bbox`` L1, ``loss_giou`` 1 - GIoU, ``loss_presence`` presence token, ``loss_mask`` focal and
``loss_dice`` dice of the matched masks, ``loss_semantic`` and ``loss_semantic_dice`` of the
semantic map, ``loss_aux`` the weighted class/box/presence losses of every earlier decoder layer,
``loss_o2m`` the weighted losses of the one-to-many queries (0 when a recipe has none).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from fusereview.training import loss_terms as T
from fusereview.training.matcher import HungarianMatcher, Matches, OneToManyMatcher
from fusereview.training.recipes import RECIPES, LossRecipe, LossWeights, recipe, weight_names

__all__ = ["COMPONENTS", "RECIPES", "LossRecipe", "LossWeights", "SetCriterion", "recipe", "weight_names"]

COMPONENTS = (
    "loss_ce",
    "loss_bbox",
    "loss_giou",
    "loss_presence",
    "loss_mask",
    "loss_dice",
    "loss_semantic",
    "loss_semantic_dice",
    "loss_aux",
    "loss_o2m",
)


def _num_boxes(targets: list[torch.Tensor], device: torch.device) -> float:
    """Objects in the batch, averaged over DDP ranks (every rank then divides by the same number), at least 1."""
    n = float(sum(len(t) for t in targets))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        nb = torch.tensor([n], device=device)
        torch.distributed.all_reduce(nb)
        n = nb.item() / torch.distributed.get_world_size()
    return max(1.0, n)


def _pairs(boxes: torch.Tensor, targets: list[torch.Tensor], matches: Matches) -> tuple[Any, ...]:
    """Batch index, query index, predicted and target boxes of every matched pair."""
    sb, sq, tb = [], [], []
    for b, (qi, ti) in enumerate(matches):
        sb.append(torch.full_like(qi, b))
        sq.append(qi)
        tb.append(targets[b][ti])
    sb_t, sq_t = torch.cat(sb).to(boxes.device), torch.cat(sq).to(boxes.device)
    pred = boxes[sb_t, sq_t].float()
    tgt = torch.cat(tb).to(pred) if tb else pred.new_zeros(0, 4)
    return sb_t, sq_t, pred, tgt


class SetCriterion:
    """Match queries to targets and compute every loss component of a recipe.

    Parameters
    ----------
    weights:
        Component weights (default: the recipe's).
    mask_points:
        Points sampled per mask (default: the recipe's).
    recipe:
        A :class:`LossRecipe` or a recipe name (default ``sam3``).
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        mask_points: int | None = None,
        *,
        recipe: LossRecipe | str = "sam3",
    ) -> None:
        r = RECIPES[recipe] if isinstance(recipe, str) else recipe
        if weights is not None:
            r = replace(r, weights=weights)
        if mask_points is not None:
            r = replace(r, mask_points=mask_points)
        self.recipe = r
        self.w = r.weights
        costs = r.matcher_costs or (self.w.ce, self.w.bbox, self.w.giou)
        self.matcher = HungarianMatcher(*costs, alpha=r.cls_alpha, gamma=r.cls_gamma, l1_on=r.box_l1_on)
        self.o2m_matcher = OneToManyMatcher(**r.o2m_matcher)
        self.mask_points = r.mask_points

    @property
    def wants_o2m(self) -> bool:
        """Whether the forward should add one-to-many queries (training only)."""
        return self.recipe.o2m

    # ----------------------------------------------------------------- one decoder layer

    def _classification(self, logits, boxes, targets, matches, keep, num_boxes):
        r = self.recipe
        B, Q = logits.shape
        sb, sq, pred, tgt = _pairs(boxes, targets, matches)
        if r.classification == "iou_aware":
            matched = torch.zeros(B, Q, dtype=torch.bool, device=logits.device)
            ious = torch.zeros(B, Q, device=logits.device)
            matched[sb, sq] = True
            ious[sb, sq] = T.matched_iou(pred.detach(), tgt)
            return T.iou_aware_classification(
                logits, matched, ious, keep, alpha=r.cls_alpha, gamma=r.cls_gamma, pos_weight=r.pos_weight
            )
        # legacy: hard-target focal, summed over queries, per object
        hard = torch.zeros(B, Q, device=logits.device)
        hard[sb, sq] = 1.0
        return (T.sigmoid_focal(logits.float(), hard) * keep[:, None]).sum() / num_boxes

    def _layer(self, logits, boxes, presence, targets, keep, num_boxes, matcher):
        """Class, box and (when ``presence`` is given) presence losses of one layer; returns (losses, matches)."""
        matches = matcher(logits.detach(), boxes.detach(), targets)
        _, _, pred, tgt = _pairs(boxes, targets, matches)
        l1, giou = T.box_l1_and_giou(pred, tgt, num_boxes, l1_on=self.recipe.box_l1_on)
        losses = {
            "loss_ce": self._classification(logits, boxes, targets, matches, keep, num_boxes),
            "loss_bbox": l1,
            "loss_giou": giou,
        }
        if presence is not None:
            losses["loss_presence"] = T.presence_loss(presence, keep, alpha=self.recipe.presence_alpha)
        return losses, matches

    def _weighted(self, comps: dict[str, torch.Tensor]) -> torch.Tensor:
        w = self.w
        names = {"loss_ce": w.ce, "loss_bbox": w.bbox, "loss_giou": w.giou, "loss_presence": w.presence}
        names.update(loss_mask=w.mask, loss_dice=w.dice)
        return sum(names[k] * v for k, v in comps.items())

    # ----------------------------------------------------------------- the whole output

    def __call__(
        self, out: dict[str, torch.Tensor], batch: dict
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and the components.

        Parameters
        ----------
        out:
            ``logits (L,B,Q)``, ``boxes (L,B,Q,4)`` normalised xyxy, ``presence (L,B)``,
            ``masks (B,Q,M,M)`` and ``semantic (B,1,M,M)`` logits; layer L-1 is the model's output.
            With one-to-many queries also ``o2m_logits (L,B,Q)``, ``o2m_boxes (L,B,Q,4)`` and
            ``o2m_masks (B,Q,M,M)``.
        batch:
            From :func:`fusereview.training.data.collate`.
        """
        dev = out["boxes"].device
        targets = [b.to(dev) for b in batch["boxes"]]
        keep = batch["positive"].to(dev)
        num_boxes = _num_boxes(targets, dev)
        n_layers = out["logits"].shape[0]
        comps, matches = self._layer(
            out["logits"][-1], out["boxes"][-1], out["presence"][-1], targets, keep, num_boxes, self.matcher
        )
        aux = out["boxes"].sum() * 0.0
        for layer in range(n_layers - 1):
            la, _ = self._layer(
                out["logits"][layer],
                out["boxes"][layer],
                out["presence"][layer],
                targets,
                keep,
                num_boxes,
                self.matcher,
            )
            aux = aux + self._weighted(la)
        comps["loss_aux"] = aux
        tmasks = [m.to(dev) for m in batch["masks"]]
        comps.update(self._mask_losses(out["masks"], tmasks, matches, num_boxes))
        comps.update(self._semantic(out["semantic"][:, 0], tmasks))
        comps["loss_o2m"] = self._o2m(out, targets, tmasks, keep, num_boxes)
        w = self.w
        total = (
            w.ce * comps["loss_ce"]
            + w.bbox * comps["loss_bbox"]
            + w.giou * comps["loss_giou"]
            + w.presence * comps["loss_presence"]
            + w.mask * comps["loss_mask"]
            + w.dice * comps["loss_dice"]
            + w.semantic * comps["loss_semantic"]
            + w.semantic_dice * comps["loss_semantic_dice"]
            + w.aux * comps["loss_aux"]
            + w.o2m * comps["loss_o2m"]
        )
        if self.recipe.scale_by_sqrt_batch:
            # SAM3's trainer scales by sqrt of the number of prompts in the (micro-)batch
            total = total * math.sqrt(len(targets))
        return total, comps

    def _o2m(self, out, targets, tmasks, keep, num_boxes) -> torch.Tensor:
        """Weighted losses of the one-to-many queries: the o2m matcher on the last layer, the one-to-one
        matcher on the earlier ones (as SAM3 trains them), masks on the last layer only; no presence
        (the presence token belongs to the one-to-one queries)."""
        if "o2m_logits" not in out:
            return out["boxes"].sum() * 0.0
        n_layers = out["o2m_logits"].shape[0]
        total = out["o2m_boxes"].sum() * 0.0
        for layer in range(n_layers):
            last = layer == n_layers - 1
            la, matches = self._layer(
                out["o2m_logits"][layer],
                out["o2m_boxes"][layer],
                None,
                targets,
                keep,
                num_boxes,
                self.o2m_matcher if last else self.matcher,
            )
            if last and "o2m_masks" in out:
                la.update(self._mask_losses(out["o2m_masks"], tmasks, matches, num_boxes))
            total = total + self._weighted(la)
        return total

    def _mask_losses(self, pred, tmasks, matches, num_boxes):
        if not self.recipe.importance_sampling:
            return self._legacy_mask_losses(pred, tmasks, matches, num_boxes)
        pl, tl = [], []
        for b, (qi, ti) in enumerate(matches):
            if len(qi):
                pl.append(pred[b, qi.to(pred.device)])
                tl.append(tmasks[b][ti.to(pred.device)])
        if not pl:
            zero = pred.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero}
        p, t = torch.cat(pl).float(), torch.cat(tl).float()
        # the global RNG: seeded by the run, saved in trainer_state.pt, so a resumed run samples the same points
        coords = T.sample_mask_points(p, self.mask_points)
        focal, dice = T.point_mask_losses(p, t, coords, num_boxes)
        return {"loss_mask": focal, "loss_dice": dice}

    def _legacy_mask_losses(self, pred, tmasks, matches, num_boxes):
        """Nearest-downsampled targets at uniform random pixels (all of them for small masks)."""
        M = pred.shape[-1]
        dev = pred.device
        if any(m.shape[-1] != M for m in tmasks if m.numel()):
            tmasks = [
                F.interpolate(m[None], size=(M, M), mode="nearest")[0] if m.numel() else m.new_zeros(0, M, M)
                for m in tmasks
            ]
        n_pix = M * M
        # drawn before looking at the matches, as the first recipe did: the same random stream
        idx = None if n_pix <= self.mask_points else torch.randint(0, n_pix, (self.mask_points,), device=dev)
        pl, tl = [], []
        for b, (qi, ti) in enumerate(matches):
            if len(qi):
                pl.append(pred[b, qi.to(dev)].flatten(1))
                tl.append(tmasks[b][ti.to(dev)].flatten(1))
        if not pl:
            zero = pred.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero}
        p, t = torch.cat(pl).float(), torch.cat(tl).float()
        if idx is not None:
            p, t = p[:, idx], t[:, idx]
        return {
            "loss_mask": T.sigmoid_focal(p, t).mean(1).sum() / num_boxes,
            "loss_dice": T.dice_loss(p, t) * len(p) / num_boxes,
        }

    def _semantic(self, sem: torch.Tensor, tmasks: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The semantic map against the union of the prompt's objects (empty for negatives)."""
        M = tmasks[0].shape[-1]  # an item without objects still has (0, M, M) masks
        union = torch.stack([m.amax(0) if m.numel() else sem.new_zeros(M, M) for m in tmasks]).float()
        if self.recipe.semantic == "gated_focal":
            focal, dice = T.semantic_losses(sem, union)
            return {"loss_semantic": focal, "loss_semantic_dice": dice}
        sem = sem.float()
        if union.shape[-1] != sem.shape[-1]:
            union = F.interpolate(union[:, None], size=sem.shape[-2:], mode="nearest")[:, 0]
        return {
            "loss_semantic": F.binary_cross_entropy_with_logits(sem, union),
            "loss_semantic_dice": T.dice_loss(sem.flatten(1), union.flatten(1)),
        }
