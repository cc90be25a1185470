"""Checks before a run is resumed, so that a refused ``--resume`` says why in one line and changes nothing.

A refusal happens before anything is written: no end record is appended to the run's
``metrics.jsonl`` (a finished run stays finished) and no row is added to the project's runs.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from fusereview.core.errors import FusereviewError

STATE_FILE = "trainer_state.pt"
#: What ``Trainer._save_last`` puts in the state file.
STATE_KEYS = ("optimizer", "scheduler", "state", "rng")


class ResumeRefusedError(FusereviewError):
    """A run folder cannot be resumed; the message names the file and what is wrong with it."""


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json``, or a :class:`ResumeRefusedError` naming it."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ResumeRefusedError(f"{run_dir}: not a run folder (no config.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResumeRefusedError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResumeRefusedError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise ResumeRefusedError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _end_status(run_dir: Path) -> tuple[str | None, Any]:
    """Status and step of the run's last end record (``None`` when it has none)."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return None, None
    status, step = None, None
    for raw in metrics.read_bytes().splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        if rec.get("type") == "step":
            step = rec.get("step", step)
        elif rec.get("type") == "end":
            status = rec.get("status")
    return status, step


def check_resumable(run_dir: str | Path) -> dict[str, Any]:
    """Refuse a run folder that cannot be resumed; return its saved configuration otherwise.

    Checks, without loading the model: ``config.json`` is readable JSON, the run did not finish,
    ``checkpoints/last/trainer_state.pt`` is there and is a PyTorch archive.

    Raises
    ------
    ResumeRefusedError
        With one line that names the file and the problem.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    status, step = _end_status(run_dir)
    if status == "finished":
        raise ResumeRefusedError(
            f"{run_dir}: the run finished (step {step}); there is nothing to resume. To train "
            f"further, start a new run from its model: --model {run_dir / 'checkpoints' / 'best'}"
        )
    state = run_dir / "checkpoints" / "last" / STATE_FILE
    if not state.is_file():
        raise ResumeRefusedError(f"{run_dir}: nothing to resume (no checkpoints/last/{STATE_FILE})")
    # torch.save writes a zip archive; anything else is damaged (a cut copy, another file)
    if not zipfile.is_zipfile(state):
        raise ResumeRefusedError(
            f"{state}: damaged (not a PyTorch archive); the run cannot be resumed from it"
        )
    return config


def load_trainer_state(path: Path, safe_globals: list[Any]) -> dict[str, Any]:
    """``torch.load`` the trainer state with ``weights_only=True``; a bad file is one clear line.

    Torch's own message for a refused pickle recommends ``weights_only=False``, i.e. running
    whatever code the file holds. fusereview never does, so that advice is never shown.
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(safe_globals):
            st = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ResumeRefusedError(
            f"{path}: holds objects a trainer state never has (not written by fusereview, or "
            "tampered with); it is not loaded and the run cannot be resumed from it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ResumeRefusedError(
            f"{path}: damaged ({type(exc).__name__}); the run cannot be resumed from it"
        ) from None
    if not isinstance(st, dict):
        raise ResumeRefusedError(f"{path}: not a trainer state (a {type(st).__name__})")
    missing = [k for k in STATE_KEYS if k not in st]
    if missing:
        raise ResumeRefusedError(f"{path}: not a trainer state (no {', '.join(missing)})")
    return st
