"""Tiny SAM3 configurations: the real architecture at toy size, for tests, CI and the demo.

A tiny model is built from a config and seeded, so the model spec ``"tiny"`` means the same weights
on every machine without downloading anything. It predicts nonsense, but every code path (loading,
prediction, caching, training, export) runs exactly as with the full 840M-parameter model.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from transformers import Sam3Config, Sam3Model

from fusereview.models.tokenizer import PromptTokenizer, build_tiny_tokenizer

#: The model spec that means "the seeded tiny model" wherever a model path is accepted.
TINY_SPEC = "tiny"
#: The seed of the ``"tiny"`` spec: the same seed gives the same weights, hence the same fingerprint.
TINY_SEED = 0

#: Held while a model is constructed: the fast loader switches weight initialisation off process-wide
#: (transformers' ``no_init_weights`` patches torch.nn.init), which must not hit a seeded tiny model
#: being built in another thread at the same moment.
MODEL_BUILD_LOCK = threading.Lock()

_DEFAULTS: dict[str, Any] = {
    "image_size": 224,
    "hidden": 64,
    "vit_layers": 3,
    "text_layers": 2,
    "geometry_layers": 1,
    "encoder_layers": 2,
    "decoder_layers": 3,
    "num_queries": 30,
    "heads": 4,
    "text_max_length": 16,
    "vocab_size": None,
}


def tiny_config(**overrides: Any) -> Sam3Config:
    """Build a small ``Sam3Config`` of the real SAM3 architecture.

    Parameters
    ----------
    **overrides:
        Any of ``image_size`` (pixels, a multiple of 14; default 224), ``hidden`` (width of every
        part, default 64), ``vit_layers`` (3), ``text_layers`` (2), ``geometry_layers`` (1),
        ``encoder_layers`` (2), ``decoder_layers`` (3), ``num_queries`` (30), ``heads`` (4),
        ``text_max_length`` (16 tokens) and ``vocab_size`` (default: the tiny tokenizer's).

    Returns
    -------
    Sam3Config
        A config whose model has about 1.4M parameters at the defaults.
    """
    unknown = set(overrides) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"tiny_config() got unknown options {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
    o = {**_DEFAULTS, **overrides}
    size, h, heads = int(o["image_size"]), int(o["hidden"]), int(o["heads"])
    if size % 14:
        raise ValueError(f"tiny_config: image_size must be a multiple of the patch size 14, got {size}")
    grid = size // 14
    tok = build_tiny_tokenizer(max_length=int(o["text_max_length"]))
    vocab = int(o["vocab_size"] or tok.vocab_size)
    # Windowed attention needs windows that tile the patch grid; the last layer is global, as in SAM3.
    window = next(w for w in (8, 4, 2, 1) if grid % w == 0)
    mlp = 4 * h
    return Sam3Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam3_vit_model",
                "hidden_size": h,
                "intermediate_size": mlp,
                "num_hidden_layers": int(o["vit_layers"]),
                "num_attention_heads": heads,
                "image_size": size,
                "patch_size": 14,
                "window_size": window,
                "global_attn_indexes": [int(o["vit_layers"]) - 1],
                # Position embeddings at the working size: no tiling at 224 px.
                "pretrain_image_size": size,
            },
            "fpn_hidden_size": h,
            "backbone_feature_sizes": [[grid * 4, grid * 4], [grid * 2, grid * 2], [grid, grid]],
        },
        text_config={
            "model_type": "clip_text_model",
            "vocab_size": vocab,
            "hidden_size": h,
            "intermediate_size": mlp,
            "projection_dim": h,
            "num_hidden_layers": int(o["text_layers"]),
            "num_attention_heads": heads,
            "max_position_embeddings": int(o["text_max_length"]),
            "bos_token_id": tok.bos_id,
            "eos_token_id": tok.eos_id,
            "pad_token_id": tok.pad_id,
        },
        geometry_encoder_config={
            "hidden_size": h,
            "num_layers": int(o["geometry_layers"]),
            "num_attention_heads": heads,
            "intermediate_size": mlp,
        },
        detr_encoder_config={
            "hidden_size": h,
            "num_layers": int(o["encoder_layers"]),
            "num_attention_heads": heads,
            "intermediate_size": mlp,
        },
        detr_decoder_config={
            "hidden_size": h,
            "num_layers": int(o["decoder_layers"]),
            "num_queries": int(o["num_queries"]),
            "num_attention_heads": heads,
            "intermediate_size": mlp,
        },
        mask_decoder_config={"hidden_size": h, "num_attention_heads": heads},
    )


def tiny_model(seed: int = TINY_SEED, **overrides: Any) -> Sam3Model:
    """A randomly initialised tiny ``Sam3Model`` (eval mode); the same seed gives the same weights.

    Parameters
    ----------
    seed:
        Seed of the initialisation (the global RNG state is restored afterwards).
    **overrides:
        Passed to :func:`tiny_config`.
    """
    config = tiny_config(**overrides)
    # fork_rng: building the demo model must not perturb the caller's random stream.
    with MODEL_BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam3Model(config)
    return model.eval()


def tiny_tokenizer(**overrides: Any) -> PromptTokenizer:
    """The tokenizer that goes with :func:`tiny_config` (same max length)."""
    return build_tiny_tokenizer(
        max_length=int(overrides.get("text_max_length", _DEFAULTS["text_max_length"]))
    )
