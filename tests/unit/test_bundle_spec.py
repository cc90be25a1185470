"""The PyInstaller bundle collects what static analysis cannot see (fast: no build)."""

from __future__ import annotations

import sys
from importlib import util
from pathlib import Path

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def test_the_spec_collects_the_sam3_modules_and_every_command() -> None:
    sys.path.insert(0, str(PACKAGING))
    try:
        from bundle_modules import hidden_imports
    finally:
        sys.path.remove(str(PACKAGING))
    mods = set(hidden_imports())
    # transformers imports these lazily: the bundle failed with "Could not import module 'Sam3Model'"
    for name in (
        "transformers.models.sam3.modeling_sam3",
        "transformers.models.sam3.configuration_sam3",
        "transformers.models.sam3_tracker.modeling_sam3_tracker",
    ):
        assert name in mods and util.find_spec(name) is not None, name
    commands = {p.stem for p in (PACKAGING.parent / "fusereview" / "commands").glob("*.py")} - {"__init__"}
    assert {f"fusereview.commands.{c}" for c in commands} <= mods
    assert "fusereview.qt.panels.training" in mods and "fusereview.qt.panels.evaluation" in mods
    spec = (PACKAGING / "fusereview.spec").read_text()
    assert "hidden_imports()" in spec and '"matplotlib"' not in spec  # the report draws with matplotlib


def test_the_spec_collects_torchvisions_operator_libraries() -> None:
    """Regression: the bundle failed with "operator torchvision::nms does not exist" (its
    ``_C_stable.so`` is loaded by path, so PyInstaller's analysis never saw it)."""
    import torchvision

    sys.path.insert(0, str(PACKAGING))
    try:
        from bundle_modules import library_binaries
    finally:
        sys.path.remove(str(PACKAGING))
    collected = {(Path(src).name, dest) for src, dest in library_binaries()}
    package = Path(torchvision.__file__).parent
    libraries = [f.name for f in package.iterdir() if f.suffix in (".so", ".pyd", ".dylib", ".dll")]
    assert libraries, "torchvision ships its operators as libraries"
    assert {(name, "torchvision") for name in libraries} <= collected
    for name in libraries:  # what torchvision itself loads, by the path it computes
        if name.startswith("_C"):
            assert Path(torchvision.extension._get_extension_path(Path(name).stem.split(".")[0])).exists()
    assert "binaries=library_binaries()" in (PACKAGING / "fusereview.spec").read_text()
