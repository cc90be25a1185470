"""fusereview's own model format (format d): a folder any fusereview can load offline.

Layout::

    model.safetensors      weights, transformers names (float32, or bfloat16 to halve the size)
    config.json            the transformers Sam3Config
    tokenizer.json         the prompt tokenizer (+ tokenizer_config.json)
    fusereview.json        {"format": "fusereview-sam3", "version": 1, "export_id": str,
                            "created_at": str, "dtype": str, "prompts": {category_id: prompt},
                            "run_id": str | None, "metrics": dict,
                            "base": {"spec": str, "fingerprint": str} | None,
                            "parameters": "all" | "trained"}

With ``base``, ``model.safetensors`` holds only the parameters that training changed; loading first
loads the base checkpoint (which must still have the recorded fingerprint) and overlays them.
The folder is written beside its final place and renamed into it, so a crash never leaves half an
export where a model is expected.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import Sam3Model

from fusereview.core.files import apply_umask, make_temp_dir, replace_dir
from fusereview.models.checkpoints import EXPORT_FORMAT, EXPORT_META
from fusereview.models.tokenizer import PromptTokenizer

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def save_export(
    out_dir: str | Path,
    model: Sam3Model,
    tokenizer: PromptTokenizer,
    *,
    prompts: Mapping[int, str] | None = None,
    run_id: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    dtype: str = "float32",
    only: Iterable[str] | None = None,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` as an export folder (format d), atomically replacing ``out_dir``.

    Parameters
    ----------
    out_dir:
        The export folder (created; an existing one is replaced only once the new one is complete).
    model, tokenizer:
        What to save.
    prompts:
        Category id -> prompt the model was trained or validated with.
    run_id, metrics:
        The training run that produced the model and its validation metrics.
    dtype:
        ``"float32"`` or ``"bfloat16"`` (the loader casts back to the model's float32).
    only:
        Names of the parameters to save (the trained ones); requires ``base``.
    base:
        ``{"spec": ..., "fingerprint": ...}`` of the checkpoint the other parameters come from; a
        relative spec is resolved against the export folder.
    extra:
        More JSON-serialisable fields for ``fusereview.json``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if (only is None) != (base is None):
        raise ValueError("save_export: 'only' (trained parameters) and 'base' go together")
    out_dir = Path(out_dir)
    state = model.state_dict()
    if only is not None:
        wanted = set(only)
        unknown = wanted - set(state)
        if unknown:
            raise ValueError(f"save_export: not parameters of the model: {sorted(unknown)[:3]}")
        state = {k: v for k, v in state.items() if k in wanted}
    tensors = {k: v.detach().to("cpu", _DTYPES[dtype]).contiguous() for k, v in state.items()}
    meta: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "export_id": uuid.uuid4().hex,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dtype": dtype,
        "prompts": {str(k): v for k, v in (prompts or {}).items()},
        "run_id": run_id,
        "metrics": dict(metrics or {}),
        "base": dict(base) if base is not None else None,
        "parameters": "trained" if only is not None else "all",
        **dict(extra or {}),
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir.parent, prefix=f".{out_dir.name}.")
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        apply_umask(tmp / "model.safetensors")  # safetensors creates it 0600 whatever the umask
        model.config.save_pretrained(str(tmp))
        tokenizer.save(tmp)
        (tmp / EXPORT_META).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        for f in tmp.iterdir():  # durable before the rename makes it visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def trained_parameter_names(model: torch.nn.Module) -> list[str]:
    """Names of the parameters with ``requires_grad`` (what a partial export saves)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]
