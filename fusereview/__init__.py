"""fusereview: review, correct and retrain SAM3 predictions into trustworthy COCO labels.

Layers (see docs/ARCHITECTURE.md): ``core`` (no Qt, no torch), ``models`` and ``training``
(torch, no Qt), ``evaluation`` (no Qt), ``qt`` (the desktop application) and ``cli``.
"""

from __future__ import annotations

__version__ = "0.1.0"
