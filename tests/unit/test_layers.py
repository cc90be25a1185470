"""The house plan's layer table, checked mechanically in fresh interpreters."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import fusereview

FORBIDDEN = {
    "fusereview.core": ["PySide6", "pyqtgraph", "torch"],
    "fusereview.models": ["PySide6", "pyqtgraph"],
    "fusereview.training": ["PySide6", "pyqtgraph"],
    "fusereview.evaluation": ["PySide6", "pyqtgraph"],
}


def _submodules(package: str) -> list[str]:
    root = Path(fusereview.__file__).parent / package.split(".", 1)[1]
    names = [package]
    for info in pkgutil.walk_packages([str(root)], prefix=package + "."):
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_nothing_forbidden(package: str) -> None:
    modules = _submodules(package)
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [f for f in {FORBIDDEN[package]!r} if f in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{package} imported {out.stdout.strip()}"


def test_cli_help_lists_every_command() -> None:
    from fusereview.cli import COMMANDS

    out = subprocess.run(
        [sys.executable, "-m", "fusereview", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert name in out.stdout
    # --help must not drag in torch or Qt (fast start on a headless server)
    code = "import sys; from fusereview.cli import build_parser; build_parser(); print(sorted(m for m in ('torch','PySide6') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
