"""Where run-time resources live (demo model, icons, stylesheet).

The repository keeps them in the top-level ``resources/`` folder. An editable install finds them
beside the package; a wheel installs them as data files under ``<prefix>/share/fusereview/resources``; a PyInstaller bundle (packaging/fusereview.spec) unpacks them under
``sys._MEIPASS/resources``; ``FUSEREVIEW_RESOURCES`` overrides both (for packagers).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fusereview.core.errors import FusereviewError


def resources_dir() -> Path:
    """Return the resources folder, or raise a clear error naming where it was looked for."""
    candidates: list[Path] = []
    env = os.environ.get("FUSEREVIEW_RESOURCES")
    if env:
        candidates.append(Path(env))
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(Path(__file__).resolve().parent.parent / "resources")  # a checkout / editable install
    candidates.append(Path(sys.prefix) / "share" / "fusereview" / "resources")  # a wheel's data files
    for c in candidates:
        if c.is_dir():
            return c
    raise FusereviewError("resources folder not found; looked in: " + ", ".join(str(c) for c in candidates))


def resource(*parts: str) -> Path:
    """Path of one resource, e.g. ``resource("demo_model")``; raises if it does not exist."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FusereviewError(f"missing resource: {path}")
    return path
