"""``python -m fusereview`` (also what ``torchrun -m fusereview`` runs)."""

from __future__ import annotations

import sys

from fusereview.cli import main

if __name__ == "__main__":
    sys.exit(main())
