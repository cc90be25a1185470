"""Hungarian matching of predicted queries to target objects (DETR / SAM3 style)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import generalized_box_iou


class HungarianMatcher:
    """One-to-one assignment minimising class + L1 box + GIoU cost.

    Parameters
    ----------
    cost_class, cost_bbox, cost_giou:
        Weights of the three costs (DETR's 2 / 5 / 2).
    alpha, gamma:
        The focal-loss shape used for the class cost, so that matching agrees with the loss.
    """

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
    ) -> None:
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.alpha = alpha
        self.gamma = gamma

    @torch.no_grad()
    def __call__(
        self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
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
        prob = logits.float().sigmoid()
        neg = (1 - self.alpha) * prob**self.gamma * -(1 - prob + 1e-8).log()
        pos = self.alpha * (1 - prob) ** self.gamma * -(prob + 1e-8).log()
        class_cost = pos - neg
        for b, tgt in enumerate(targets):
            if tgt.numel() == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                out.append((empty, empty))
                continue
            pb = boxes[b].float()
            tgt = tgt.to(pb)
            c = (
                self.cost_bbox * torch.cdist(pb, tgt, p=1)
                + self.cost_class * class_cost[b][:, None].expand(-1, len(tgt))
                - self.cost_giou * generalized_box_iou(pb, tgt)
            )
            c = torch.nan_to_num(c, nan=1e6, posinf=1e6, neginf=-1e6)
            qi, ti = linear_sum_assignment(c.cpu().numpy())
            out.append(
                (
                    torch.as_tensor(np.asarray(qi), dtype=torch.int64),
                    torch.as_tensor(np.asarray(ti), dtype=torch.int64),
                )
            )
        return out
