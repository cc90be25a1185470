"""fusereview.training: fine-tune SAM3 (engine, hooks, data, matcher, losses, runs, distributed).

The names below are imported lazily, so that ``fusereview.training.presets`` / ``runs`` (used by the
GUI and the CLI's argument parsing) do not pull in torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TrainConfig": "fusereview.training.config",
    "Trainer": "fusereview.training.engine",
    "RunResult": "fusereview.training.engine",
    "TrainData": "fusereview.training.engine",
    "load_train_data": "fusereview.training.engine",
    "HookBase": "fusereview.training.hooks",
    "CallbackHook": "fusereview.training.hooks",
    "preset_config": "fusereview.training.presets",
    "PRESETS": "fusereview.training.presets",
    "read_metrics": "fusereview.training.runs",
    "MetricsFollower": "fusereview.training.runs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fusereview.training' has no attribute {name!r}")
