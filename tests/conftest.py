"""Shared test setup, applied before any test module (or QApplication) exists.

- Qt runs offscreen (the real-window test starts its own X server and asks for xcb itself).
- Tests never reach a model hub: every weight comes from a local path or a tiny config.
- Tests never touch the user's home: HOME and the XDG folders point into a throw-away folder for
  the whole session, so QSettings (recent projects, window layout), the demo's data folder and
  any log file land there, in this process and in every subprocess a test starts.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

os.environ.setdefault("FUSEREVIEW_TEST_REAL_HOME", os.environ.get("HOME", ""))
_SANDBOX = Path(tempfile.mkdtemp(prefix="fusereview-test-home-"))
atexit.register(shutil.rmtree, _SANDBOX, True)
os.environ["HOME"] = str(_SANDBOX)
for _var, _sub in (
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_DATA_HOME", ".local/share"),
    ("XDG_STATE_HOME", ".local/state"),
    ("XDG_CACHE_HOME", ".cache"),
):
    os.environ[_var] = str(_SANDBOX / _sub)
    (_SANDBOX / _sub).mkdir(parents=True, exist_ok=True)


# Tracebacks of internal errors go to a log folder (fusereview.error_boundary): inside the sandbox.
os.environ.setdefault("FUSEREVIEW_LOG_DIR", str(_SANDBOX / "logs"))


def pytest_report_header(config) -> str:
    return f"fusereview tests: HOME and XDG folders sandboxed in {_SANDBOX}"
