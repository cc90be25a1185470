"""Files the GUI loads at run time (stylesheet, icon) from ``resources/qt/``.

Looked up in the installed package data first (``fusereview/resources/qt``, for a wheel or a
frozen app), then in the source checkout (``<repo>/resources/qt``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fusereview.core.errors import FusereviewError


class ResourceMissingError(FusereviewError):
    """A file the GUI needs is not installed."""


def resource_dirs() -> list[Path]:
    """Folders searched for GUI resources, in order."""
    package = Path(__file__).resolve().parent.parent  # fusereview/
    dirs = [package / "resources" / "qt", package.parent / "resources" / "qt"]
    frozen = getattr(sys, "_MEIPASS", None)  # PyInstaller one-folder / one-file builds
    if frozen:
        dirs.insert(0, Path(frozen) / "resources" / "qt")
    return dirs


def resource_path(name: str) -> Path:
    """Path of a GUI resource; raises :class:`ResourceMissingError` naming where it looked."""
    for d in resource_dirs():
        p = d / name
        if p.is_file():
            return p
    looked = ", ".join(str(d) for d in resource_dirs())
    raise ResourceMissingError(f"GUI resource {name!r} not found (looked in {looked})")


def stylesheet() -> str:
    """The application stylesheet."""
    return resource_path("style.qss").read_text(encoding="utf-8")
