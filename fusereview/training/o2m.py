"""One-to-many (DAC) queries for transformers' ``Sam3Model``, during training only, without forking it.

SAM3 trains its decoder with a second copy of its queries (DAC-DETR's "divide and conquer"): the
copies start from the same query embeddings and reference boxes, skip self-attention, and are
matched one-to-many (each object supervises its few best copies). The model's own ("one-to-one")
queries never see the copies, so their outputs are exactly what they would be without them; at
inference the copies do not exist. transformers' port has no such path, and adds it here with
three temporary changes, all undone when the context exits:

1. the decoder's ``query_embed`` and ``reference_points`` are replaced by views whose ``weight`` is
   the original parameter twice over (the decoder reads nothing but ``.weight``; gradients of both
   halves reach the one parameter);
2. a forward pre-hook on every decoder layer's ``self_attn`` adds an attention mask that hides the
   copies from the presence token and the one-to-one queries;
3. a forward hook on the same modules zeroes the copies' self-attention output, so the residual
   passes them through unchanged into the layer norm, as SAM3's decoder does.

Everything after self-attention (text and image cross-attention with the box bias, the MLP, box
refinement, scoring, masks) works per query and needs no change. ADR 0015 gives the reasons.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class _Repeated(nn.Module):
    """Stands in for an ``nn.Embedding``: ``.weight`` is the original weight repeated ``times`` along the rows."""

    def __init__(self, original: nn.Module, times: int) -> None:
        super().__init__()
        # kept out of the module tree, so no parameter is registered twice
        object.__setattr__(self, "_original", original)
        self.times = times

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        return self._original.weight.repeat(self.times, 1)


def _self_attention_modules(decoder: nn.Module) -> list[nn.Module]:
    return [layer.self_attn for layer in decoder.layers]


@contextmanager
def one_to_many_queries(model: nn.Module) -> Iterator[int]:
    """Within the block, a training forward of ``model`` also runs one-to-many copies of the queries.

    The decoder's outputs then hold ``2 Q`` queries: the model's own first, the copies after them.
    Yields ``Q``. Outside the block (and in eval mode, where the caller does not enter it) the model
    is exactly as before: same modules, same parameters, no hooks.
    """
    core = model.module if hasattr(model, "module") else model
    decoder = core.detr_decoder
    n_queries = decoder.query_embed.weight.shape[0]
    n_tokens = 1 + 2 * n_queries  # presence token, own queries, copies
    # SDPA takes a boolean mask (True: may attend) under any autocast dtype; the eager kernel adds
    # the mask to the scores, so it gets -inf where attention is forbidden (and so does flash
    # attention, for which transformers' Sam3Attention then falls back to SDPA by itself)
    boolean = getattr(decoder.config, "_attn_implementation", "eager") == "sdpa"

    def add_mask(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        q = kwargs["query"]
        if q.shape[1] != n_tokens:
            raise RuntimeError(f"one-to-many queries: expected {n_tokens} decoder tokens, got {q.shape[1]}")
        if kwargs.get("attention_mask") is not None:
            raise RuntimeError("one-to-many queries: the decoder's self-attention already has a mask")
        allowed = torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=q.device)
        # presence + own queries never attend to the copies; a copy attends anywhere (its output is dropped)
        allowed[: 1 + n_queries, 1 + n_queries :] = False
        if boolean:
            mask = allowed
        else:
            mask = torch.zeros(n_tokens, n_tokens, dtype=q.dtype, device=q.device).masked_fill(
                ~allowed, float("-inf")
            )
        return args, {**kwargs, "attention_mask": mask[None, None]}

    def drop_copies(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        attn, weights = output
        keep = torch.ones(n_tokens, 1, dtype=attn.dtype, device=attn.device)
        keep[1 + n_queries :] = 0
        return attn * keep, weights

    saved = {name: getattr(decoder, name) for name in ("query_embed", "reference_points")}
    handles = []
    try:
        for name, module in saved.items():
            setattr(decoder, name, _Repeated(module, 2))
        for attn in _self_attention_modules(decoder):
            handles.append(attn.register_forward_pre_hook(add_mask, with_kwargs=True))
            handles.append(attn.register_forward_hook(drop_copies, with_kwargs=True))
        yield n_queries
    finally:
        for h in handles:
            h.remove()
        for name, module in saved.items():
            setattr(decoder, name, module)
