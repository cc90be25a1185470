"""What the PyInstaller bundle must collect beyond what its analysis finds (used by fusereview.spec).

PyInstaller follows ``import`` statements. Three kinds of module are reached another way and must
be named: fusereview's commands (imported by name from ``fusereview.cli``), transformers' model
modules (``transformers`` imports ``Sam3Model`` lazily through its ``_LazyModule``: the bundle
failed with "Could not import module 'Sam3Model'"), and the panels the window builds on demand.
"""

from __future__ import annotations

import pkgutil
from importlib import util

#: transformers' model packages fusereview uses (the detector, the interactive head, their text tower).
TRANSFORMERS_MODELS = ("sam3", "sam3_tracker", "sam3_lite_text", "sam2", "sam")


def _submodules(package: str) -> list[str]:
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    out = [package]
    for info in pkgutil.walk_packages(spec.submodule_search_locations, prefix=f"{package}."):
        out.append(info.name)
    return out


def hidden_imports() -> list[str]:
    """Every module the bundle needs that static analysis cannot see."""
    mods = _submodules("fusereview")
    for name in TRANSFORMERS_MODELS:
        mods += _submodules(f"transformers.models.{name}")
    # what transformers' lazy loader and tokenizers reach by name
    mods += ["transformers.models.auto", "tokenizers", "safetensors.torch", "pycocotools._mask"]
    return sorted(set(mods))
