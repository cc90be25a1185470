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
