"""fusereview.models: SAM3 checkpoints, tokenizer, prediction (torch, transformers; never Qt).

The public names below are imported lazily, so ``import fusereview.models`` stays cheap until a
model is actually needed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Predictor": "fusereview.models.base",
    "cache_key": "fusereview.models.base",
    "select_device": "fusereview.models.base",
    "Sam3Predictor": "fusereview.models.sam3",
    "load_predictor": "fusereview.models.sam3",
    "load_model": "fusereview.models.checkpoints",
    "LoadReport": "fusereview.models.checkpoints",
    "LoadedModel": "fusereview.models.checkpoints",
    "predict_project": "fusereview.models.predict_job",
    "save_export": "fusereview.models.export",
    "preprocess": "fusereview.models.preprocess",
    "tiny_config": "fusereview.models.tiny",
    "tiny_model": "fusereview.models.tiny",
    "TINY_SPEC": "fusereview.models.tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fusereview.models' has no attribute {name!r}")
