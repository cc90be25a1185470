"""Run the model and collect every decoder layer's boxes, logits and presence logits.

transformers' ``Sam3Model`` returns only the last decoder layer's boxes and logits. Forward hooks on
``detr_decoder`` (per-layer hidden states, reference boxes, presence logits) and on
``dot_product_scoring`` (per-layer logits) give the rest; ``box_head`` turns the per-layer states
into boxes exactly as the model does for the last layer (checked by a test). In training, the
one-to-many (DAC) copies of the queries can run alongside (:mod:`fusereview.training.o2m`); their
outputs come back under ``o2m_*`` keys and the model's own outputs are those of a plain forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from fusereview.training.o2m import one_to_many_queries


def _inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    # Same clamping as transformers' inverse_sigmoid, so the last layer matches pred_boxes exactly.
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def _cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def _core(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class LayerCapture:
    """Context manager: hooks that keep the decoder's and the scoring head's outputs of one forward."""

    def __init__(self, model: nn.Module) -> None:
        self.core = _core(model)
        self.decoder_out: Any = None
        self.scores: torch.Tensor | None = None
        self._handles: list[Any] = []

    def __enter__(self) -> LayerCapture:
        self._handles = [
            self.core.detr_decoder.register_forward_hook(lambda m, i, o: setattr(self, "decoder_out", o)),
            self.core.dot_product_scoring.register_forward_hook(lambda m, i, o: setattr(self, "scores", o)),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def per_layer(self) -> dict[str, torch.Tensor]:
        """``logits (L,B,Q)``, ``boxes (L,B,Q,4)`` normalised xyxy, ``presence (L,B)``."""
        dec = self.decoder_out
        offsets = self.core.detr_decoder.box_head(dec.intermediate_hidden_states)
        boxes = _cxcywh_to_xyxy((_inverse_sigmoid(dec.reference_boxes) + offsets).sigmoid())
        return {
            "logits": self.scores.squeeze(-1),
            "boxes": boxes,
            "presence": dec.presence_logits.squeeze(-1),
        }


def forward_all_layers(
    model: nn.Module,
    *,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    pixel_values: torch.Tensor | None = None,
    vision_embeds: Any = None,
    o2m: bool = False,
) -> dict[str, torch.Tensor]:
    """One forward; returns per-layer ``logits``/``boxes``/``presence`` plus ``masks``, ``semantic``,
    and the model's own ``pred_logits``/``pred_boxes``/``presence_logits`` (last layer).

    With ``o2m`` and the model in training mode, the one-to-many copies of the queries run too and
    their per-layer ``o2m_logits``/``o2m_boxes`` and ``o2m_masks`` are added; in eval mode ``o2m``
    changes nothing (the copies are a training device, as in SAM3).
    """
    # One padded dummy box (label -10, masked out), exactly as the predictor serves
    # (fusereview.models.sam3): the geometry encoder's CLS token is then part of the prompt in
    # training, validation and prediction alike.
    from fusereview.models.sam3 import PAD_BOX_LABEL

    batch = input_ids.shape[0]
    boxes = torch.zeros((batch, 1, 4), device=input_ids.device)
    labels = torch.full((batch, 1), PAD_BOX_LABEL, dtype=torch.long, device=input_ids.device)
    with_copies = o2m and model.training
    with LayerCapture(model) as cap, _maybe(one_to_many_queries(model) if with_copies else None) as n_own:
        out = model(
            pixel_values=pixel_values,
            vision_embeds=vision_embeds,
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_boxes=boxes,
            input_boxes_labels=labels,
        )
    res = cap.per_layer()
    res.update(
        masks=out.pred_masks,
        semantic=out.semantic_seg,
        pred_logits=out.pred_logits,
        pred_boxes=out.pred_boxes,
        presence_logits=out.presence_logits,
    )
    if with_copies:
        own = slice(0, n_own)
        copies = slice(n_own, None)
        res.update(
            o2m_logits=res["logits"][:, :, copies],
            o2m_boxes=res["boxes"][:, :, copies],
            o2m_masks=res["masks"][:, copies],
        )
        for k in ("logits", "boxes"):
            res[k] = res[k][:, :, own]
        for k in ("masks", "pred_logits", "pred_boxes"):
            res[k] = res[k][:, own]
    return res


@contextmanager
def _maybe(cm: Any) -> Iterator[Any]:
    """``cm`` entered, or nothing when it is ``None``."""
    if cm is None:
        yield None
    else:
        with cm as value:
            yield value


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Recompute every ViT block's activations in backward instead of storing them.

    transformers refuses ``gradient_checkpointing_enable()`` for Sam3, so each block's ``forward`` is
    replaced by a checkpointed call of the original (parameter names stay unchanged, so checkpoints
    and exports are unaffected). Returns the number of blocks changed.
    """
    n = 0
    for blk in _core(model).vision_encoder.backbone.layers:
        if getattr(blk, "_fusereview_checkpointed", False):
            continue
        original = blk.forward

        def forward(*args: Any, _original: Any = original, _blk: nn.Module = blk, **kwargs: Any) -> Any:
            if _blk.training and torch.is_grad_enabled():
                return checkpoint(_original, *args, use_reentrant=False, **kwargs)
            return _original(*args, **kwargs)

        blk.forward = forward
        blk._fusereview_checkpointed = True
        n += 1
    return n
