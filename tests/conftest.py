"""Shared test setup. Qt must run offscreen: set before any QApplication exists."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never reach a model hub: every weight comes from a local path or a tiny config.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tracebacks of internal errors go to a log folder (fusereview.error_boundary): never the real HOME.
if "FUSEREVIEW_LOG_DIR" not in os.environ:
    import tempfile

    os.environ["FUSEREVIEW_LOG_DIR"] = tempfile.mkdtemp(prefix="fusereview-test-log-")
