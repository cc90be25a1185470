"""The one place where the training engine builds, tokenizes for, saves and loads a SAM3 model.

Everything delegates to ``fusereview.models`` (tiny config, checkpoint loading, the shared
``preprocess`` resize, export format d), so training and prediction see the same pixels and files.
What training adds: a seeded tiny model with spread decoder queries (trainable from scratch) and a
checkpoint folder that holds the export plus the trainer's resumable state, written atomically.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fusereview.core.files import make_temp_dir, replace_dir


def spread_queries(model: nn.Module, seed: int = 0) -> None:
    """Spread the decoder's initial reference boxes over the image and give queries distinct embeddings.

    transformers initialises ``reference_points`` and ``query_embed`` with a tiny spread, so every
    query starts as the same centred box and Hungarian matching cannot break the symmetry: a model
    trained from scratch then never learns. Centres go on a jittered grid, sizes 0.05-0.3, stored as
    inverse sigmoid (the decoder applies ``sigmoid``).
    """
    decoder = model.detr_decoder
    n = decoder.reference_points.weight.shape[0]
    g = torch.Generator().manual_seed(seed)
    side = math.ceil(math.sqrt(n))
    idx = torch.arange(n)
    cx = ((idx % side).float() + 0.5 + (torch.rand(n, generator=g) - 0.5) * 0.8) / side
    cy = ((idx // side).float() + 0.5 + (torch.rand(n, generator=g) - 0.5) * 0.8) / side
    wh = 0.05 + torch.rand(n, 2, generator=g) * 0.25
    boxes = torch.stack([cx, cy, wh[:, 0], wh[:, 1]], dim=1).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        decoder.reference_points.weight.copy_(torch.log(boxes / (1 - boxes)))
        decoder.query_embed.weight.copy_(torch.randn(decoder.query_embed.weight.shape, generator=g))


@dataclass
class LoadedModel:
    """A model with what is needed to feed it.

    Attributes
    ----------
    model:
        The ``Sam3Model``.
    tokenizer:
        A :class:`fusereview.models.tokenizer.PromptTokenizer`.
    image_size:
        The square input resolution.
    spec:
        Where it came from (``"tiny"`` or a path).
    fingerprint:
        The loader's fingerprint of the weights (recorded as the base of partial exports).
    """

    model: nn.Module
    tokenizer: Any
    image_size: int
    spec: str
    fingerprint: str = ""


def load_model(spec: str, *, seed: int = 0, image_size: int | None = None) -> LoadedModel:
    """Build or load a model for training.

    Parameters
    ----------
    spec:
        ``"tiny"`` (a tiny model initialised from ``seed`` with spread queries: trainable from
        scratch), or anything :func:`fusereview.models.checkpoints.load_model` accepts.
    seed:
        Seed of the tiny model's initialisation.
    image_size:
        Resolution of a tiny model (default 224).

    Raises
    ------
    ModelLoadError
        When the checkpoint is missing, incomplete or inconsistent (from the models layer).
    """
    from fusereview.models.checkpoints import config_fingerprint
    from fusereview.models.checkpoints import load_model as models_load
    from fusereview.models.tiny import tiny_model, tiny_tokenizer

    if spec == "tiny":
        size = image_size or 224
        model = tiny_model(seed, image_size=size)
        spread_queries(model, seed)
        fp = f"tiny-train:{seed}:{config_fingerprint(model.config)}"
        return LoadedModel(model.train(), tiny_tokenizer(), size, spec, fp)
    loaded = models_load(spec)
    return LoadedModel(
        loaded.model.train(),
        loaded.tokenizer,
        int(loaded.model.config.vision_config.image_size),
        str(spec),
        loaded.fingerprint,
    )


def save_export(
    loaded: LoadedModel,
    out: Path,
    *,
    dtype: str = "float32",
    only_trainable: bool = False,
    base: tuple[str, str] | None = None,
    prompts: dict[int, str] | None = None,
    metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
    write_more: Callable[[Path], None] | None = None,
) -> Path:
    """Write an export (format d) to ``out`` atomically, optionally with more files inside.

    Parameters
    ----------
    loaded:
        The model and tokenizer.
    out:
        The folder; an existing one is replaced only after the new one is complete, so a failed
        write (disk full) leaves the previous checkpoint intact.
    dtype:
        ``"float32"`` or ``"bfloat16"``.
    only_trainable:
        Save only parameters with ``requires_grad``; the rest come from the base checkpoint.
    base:
        ``(spec, fingerprint)`` of that base (default: ``loaded``'s own). A resumed run loads
        its ``last`` checkpoint, so it passes the model the run started from.
    prompts, metrics, run_id, extra:
        Recorded in ``fusereview.json``.
    write_more:
        Called with the new folder (before it replaces ``out``) to add files: the trainer's state.
    """
    from fusereview.models.export import save_export as models_save
    from fusereview.models.export import trained_parameter_names

    model = _unwrap(loaded.model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(out.parent, prefix=f".{out.name}.")
    try:
        only = trained_parameter_names(model) if only_trainable else None
        base_spec, base_fp = base or (loaded.spec, loaded.fingerprint)
        if base_spec != "tiny":  # a spec word, not a path
            base_spec = str(Path(base_spec).resolve())
        base_meta = {"spec": base_spec, "fingerprint": base_fp} if only_trainable else None
        new = models_save(
            staging / out.name,
            model,
            loaded.tokenizer,
            prompts=prompts,
            run_id=run_id,
            metrics=metrics,
            dtype=dtype,
            only=only,
            base=base_meta,
            extra={"image_size": loaded.image_size, **(extra or {})},
        )
        if write_more is not None:
            write_more(new)
            for f in new.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        replace_dir(new, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def preprocess(images: Sequence[np.ndarray], image_size: int) -> torch.Tensor:
    """HxWx3 uint8 RGB images → normalised ``(N, 3, S, S)``: the models layer's resize, shared with serving."""
    from fusereview.models.preprocess import preprocess as models_preprocess

    return models_preprocess(images, image_size)


def tokenize(tokenizer: Any, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts → ``(input_ids, attention_mask)`` (padded to the tokenizer's length)."""
    return tokenizer.encode(list(prompts))
