"""The suite never writes to the user's real home or settings (HOME and XDG are sandboxed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_home_and_xdg_point_into_the_sandbox() -> None:
    home = Path(os.environ["HOME"])
    assert home.name.startswith("fusereview-test-home-")
    assert str(home) != os.environ["FUSEREVIEW_TEST_REAL_HOME"]
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        assert Path(os.environ[var]).is_relative_to(home)


def test_qsettings_of_the_app_land_in_the_sandbox() -> None:
    # a subprocess, as `fusereview demo` in the demo test: it inherits the sandboxed environment
    code = (
        "from PySide6.QtCore import QCoreApplication, QSettings\n"
        "app = QCoreApplication([])\n"
        "s = QSettings('fusereview', 'fusereview'); s.setValue('probe', 1); s.sync()\n"
        "print(s.fileName())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert Path(out.stdout.strip()).is_relative_to(Path(os.environ["HOME"]))
