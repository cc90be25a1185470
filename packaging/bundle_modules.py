"""What the PyInstaller bundle must collect beyond what its analysis finds (used by fusereview.spec).

PyInstaller follows ``import`` statements. Three kinds of module are reached another way and must
be named: fusereview's commands (imported by name from ``fusereview.cli``), transformers' model
modules (``transformers`` imports ``Sam3Model`` lazily through its ``_LazyModule``: the bundle
failed with "Could not import module 'Sam3Model'"), and the panels the window builds on demand.
And one kind of library: torchvision's operator libraries (``_C_stable.so``, ``image_stable.so``
and what they link, in ``torchvision.libs``), which it loads with ``torch.ops.load_library``; the
bundle without them failed with "operator torchvision::nms does not exist" when transformers
imported torchvision for SAM3.
"""

from __future__ import annotations

import pkgutil
from importlib import util
from pathlib import Path

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


#: folders of torchvision's site-packages whose libraries it loads by path (same folder in the bundle).
LOADED_BY_PATH = ("torchvision", "torchvision.libs")

_LIBRARY_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")


def library_binaries() -> list[tuple[str, str]]:
    """``(file, folder in the bundle)`` of every library loaded by path (PyInstaller's binaries)."""
    spec = util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return []
    site = Path(spec.origin).parent.parent  # torchvision.libs is a folder beside it, not a package
    out = []
    for name in LOADED_BY_PATH:
        folder = site / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.is_file() and (f.suffix in _LIBRARY_SUFFIXES or ".so." in f.name):
                out.append((str(f), name))
    return out
