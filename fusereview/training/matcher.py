"""Matching predicted queries to target objects: one-to-one (Hungarian) and one-to-many (DAC).

:class:`HungarianMatcher` gives each object exactly one query, the assignment the model's scores
are trained on. :class:`OneToManyMatcher` gives each object its few best queries: SAM3 uses it
for the extra "one-to-many" queries of training only (see :mod:`fusereview.training.o2m`).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou, generalized_box_iou

from fusereview.training.loss_terms import cxcywh

Matches = list[tuple[torch.Tensor, torch.Tensor]]


def _empty() -> tuple[torch.Tensor, torch.Tensor]:
    e = torch.zeros(0, dtype=torch.int64)
    return e, e


class HungarianMatcher:
    """One-to-one assignment minimising ``cost_class * focal cost + cost_bbox * L1 - cost_giou * GIoU``.

    Parameters
    ----------
    cost_class, cost_bbox, cost_giou:
        Weights of the three costs (SAM3's and DETR's 2 / 5 / 2).
    alpha, gamma:
        Shape of the focal class cost ``-alpha (1-p)^gamma log p + (1-alpha) p^gamma log(1-p)``:
        low for a confident query, whatever the object.
    l1_on:
        Coordinates of the L1 cost: ``"cxcywh"`` (SAM3's) or ``"xyxy"`` (the legacy recipe's).
    """

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        l1_on: str = "cxcywh",
    ) -> None:
        if l1_on not in ("cxcywh", "xyxy"):
            raise ValueError(f"l1_on must be 'cxcywh' or 'xyxy', got {l1_on!r}")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.alpha = alpha
        self.gamma = gamma
        self.l1_on = l1_on

    def class_cost(self, logits: torch.Tensor) -> torch.Tensor:
        """The focal class cost of each query (``(B, Q)``), from log-sigmoids for stability."""
        logits = logits.float()
        prob = logits.sigmoid()
        pos = -self.alpha * (1 - prob) ** self.gamma * torch.nn.functional.logsigmoid(logits)
        neg = -(1 - self.alpha) * prob**self.gamma * torch.nn.functional.logsigmoid(-logits)
        return pos - neg

    def cost_matrix(self, logits: torch.Tensor, boxes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(Q, n)`` cost of query q for object j, for one item (``logits (Q,)``, ``boxes (Q, 4)`` xyxy)."""
        pb, tgt = boxes.float(), target.to(boxes).float()
        if self.l1_on == "cxcywh":
            l1 = torch.cdist(cxcywh(pb), cxcywh(tgt), p=1)
        else:
            l1 = torch.cdist(pb, tgt, p=1)
        cls = self.class_cost(logits[None])[0][:, None].expand(-1, len(tgt))
        return self.cost_bbox * l1 + self.cost_class * cls - self.cost_giou * generalized_box_iou(pb, tgt)

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[torch.Tensor]) -> Matches:
        """Match each item's queries to its target boxes.

        Parameters
        ----------
        logits:
            ``(B, Q)`` classification logits.
        boxes:
            ``(B, Q, 4)`` normalised xyxy.
        targets:
            ``B`` tensors ``(n_i, 4)`` normalised xyxy.

        Returns
        -------
        list of (query indices, target indices) per item, both ``int64`` of length ``min(Q, n_i)``.
        """
        out = []
        for b, tgt in enumerate(targets):
            if tgt.numel() == 0:
                out.append(_empty())
                continue
            c = self.cost_matrix(logits[b], boxes[b], tgt)
            c = torch.nan_to_num(c, nan=1e6, posinf=1e6, neginf=-1e6)
            qi, ti = linear_sum_assignment(c.cpu().numpy())
            out.append(
                (
                    torch.as_tensor(np.asarray(qi), dtype=torch.int64),
                    torch.as_tensor(np.asarray(ti), dtype=torch.int64),
                )
            )
        return out


class OneToManyMatcher:
    """Each object takes its ``topk`` best queries whose quality exceeds ``threshold`` (DAC-DETR).

    Quality of query q for object j: ``alpha * p_q + (1 - alpha) * IoU(box_q, object_j)``. A query
    good for two objects goes to the one it fits best, so every query has at most one target (the
    definition of DAC-DETR's one-to-many assignment).

    Parameters
    ----------
    alpha, threshold, topk:
        SAM3's fine-tuning values are 0.3, 0.4 and 4.
    """

    def __init__(self, alpha: float = 0.3, threshold: float = 0.4, topk: int = 4) -> None:
        self.alpha = alpha
        self.threshold = threshold
        self.topk = topk

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[torch.Tensor]) -> Matches:
        """Same inputs and output layout as :class:`HungarianMatcher`; a target index may repeat."""
        out = []
        prob = logits.float().sigmoid()
        for b, tgt in enumerate(targets):
            if tgt.numel() == 0:
                out.append(_empty())
                continue
            quality = self.alpha * prob[b][:, None] + (1 - self.alpha) * box_iou(
                boxes[b].float(), tgt.to(boxes).float()
            )
            k = min(self.topk, quality.shape[0])
            chosen = torch.zeros_like(quality, dtype=torch.bool)
            chosen.scatter_(0, quality.topk(k, dim=0).indices, True)
            chosen &= quality > self.threshold
            # one target per query: the one it fits best among those that chose it
            best = torch.where(chosen, quality, torch.full_like(quality, -1.0)).argmax(dim=1)
            qi = chosen.any(dim=1).nonzero().flatten()
            out.append((qi.cpu().to(torch.int64), best[qi].cpu().to(torch.int64)))
        return out
