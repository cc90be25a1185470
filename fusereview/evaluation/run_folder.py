"""Read a training run folder (the documented format) without importing the training engine.

The engine imports torch; a report must be writable on a laptop that only has the run folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusereview.core.errors import FusereviewError
from fusereview.evaluation.cocoeval import Evaluation


class RunFolderError(FusereviewError):
    """A run folder cannot be read; the message names the file."""


@dataclass
class RunData:
    """Everything a report needs from one run folder.

    Attributes
    ----------
    steps, vals, epochs:
        The ``step``, ``val`` and ``epoch`` records of ``metrics.jsonl`` in file order.
    end:
        The ``end`` record, ``None`` while running or after a crash.
    bad_lines:
        Line numbers of ``metrics.jsonl`` that were not JSON (skipped, reported).
    checkpoints:
        Path relative to the run folder -> size in bytes, for every file under ``checkpoints/``.
    evaluations:
        Evaluation files found under ``eval/`` (what ``fusereview eval --json`` writes).
    """

    path: Path
    config: dict[str, Any]
    env: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    vals: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    bad_lines: list[int] = field(default_factory=list)
    checkpoints: dict[str, int] = field(default_factory=dict)
    evaluations: list[EvaluationFile] = field(default_factory=list)


@dataclass
class EvaluationFile:
    """One saved evaluation: which model, which split, and the evaluations by IoU type.

    ``no_masks``: why there is no mask (segm) evaluation, when the writer said (e.g. "the ground
    truth has no masks"); a report names it when it reasons from boxes.
    """

    path: Path
    split: str
    model: str
    evaluations: dict[str, Evaluation]
    no_masks: str = ""


def _read_json(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise RunFolderError(f"{path}: missing (is this a run folder?)", file=str(path))
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path}: cannot be read as JSON ({exc})", file=str(path)) from exc
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: expected a JSON object", file=str(path))
    return data


def read_evaluation_file(path: str | Path) -> EvaluationFile:
    """Read a file written by ``fusereview eval --json``.

    Raises
    ------
    RunFolderError
        When the file is not such a file (names the file and the field).
    """
    path = Path(path)
    data = _read_json(path, required=True)
    evals = data.get("evaluations")
    if not isinstance(evals, dict) or not evals:
        raise RunFolderError(
            f"{path}: evaluations: missing (not a 'fusereview eval --json' file)", file=str(path)
        )
    parsed = {}
    for iou_type, d in evals.items():
        try:
            parsed[iou_type] = Evaluation.from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFolderError(
                f"{path}: evaluations.{iou_type}: unreadable ({exc!r})", file=str(path)
            ) from exc
    return EvaluationFile(
        path,
        str(data.get("split", "")),
        str(data.get("model", "")),
        parsed,
        no_masks=str(data.get("no_masks", "") or ""),
    )


# Fields that, where present, must be a plain finite number (or null: a value that was NaN is
# written as null by the engine). Everything else of a record is shown as text.
_NUMBER_FIELDS = (
    "step",
    "epoch",
    "time",
    "lr",
    "seconds",
    "images_per_s",
    "gpu_mem_gb",
    "best_epoch",
    "best_map",
)
# ... and which of them a record of each type must have, since plots and tables are keyed by them.
_REQUIRED = {"step": ("step",), "epoch": ("epoch",), "val": ("epoch",)}
_MAX_VALUE = 1e15  # no step count, epoch, loss or timestamp of any run is this large


def plain_number(v: Any) -> bool:
    """A finite int or float (not bool) of a size a run records (see :func:`valid_record`)."""
    if type(v) is float:
        return math.isfinite(v) and abs(v) < _MAX_VALUE
    return type(v) is int and abs(v) < _MAX_VALUE


def valid_record(rec: Any) -> bool:
    """Whether a ``metrics.jsonl`` line is a record the report can use.

    A record is an object with a ``type``; its numeric fields (``step``, ``epoch``, the losses, the
    metrics under ``bbox``/``segm``) are finite numbers or null. A line that parses but breaks
    this (a string step, a 400-digit loss, NaN) is listed as a bad line, never plotted.
    """
    if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
        return False
    for key in _REQUIRED.get(rec["type"], ()):
        if not plain_number(rec.get(key)):
            return False
    for key, value in rec.items():
        numeric = key in _NUMBER_FIELDS or key == "loss" or (isinstance(key, str) and key.startswith("loss_"))
        if numeric and value is not None and not plain_number(value):
            return False
        if key in ("bbox", "segm"):
            if value is None:
                continue
            if not isinstance(value, dict):
                return False
            if not all(v is None or plain_number(v) for v in value.values()):
                return False
    return True


def read_run(run_dir: str | Path) -> RunData:
    """Read a run folder (finished, stopped, failed or still running).

    Raises
    ------
    RunFolderError
        When ``config.json`` is missing or unreadable, or another JSON file is corrupt.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a folder", file=str(path))
    run = RunData(path=path, config=_read_json(path / "config.json", required=True))
    run.env = _read_json(path / "env.json", required=False)
    metrics = path / "metrics.jsonl"
    if metrics.exists():
        lines = metrics.read_bytes().split(b"\n")
        # A half-written last line (a live run) is not an error; a corrupt line in the middle is noted.
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                if n != len(lines):
                    run.bad_lines.append(n)
                continue
            if not valid_record(rec):
                run.bad_lines.append(n)  # JSON, but not a record of the run format: skipped, noted
                continue
            kind = rec.get("type")
            if kind == "step":
                run.steps.append(rec)
            elif kind == "val":
                run.vals.append(rec)
            elif kind == "epoch":
                run.epochs.append(rec)
            elif kind == "end":
                run.end = rec
    ckpt = path / "checkpoints"
    if ckpt.is_dir():
        for f in sorted(ckpt.rglob("*")):
            if f.is_file():
                run.checkpoints[str(f.relative_to(path))] = f.stat().st_size
    eval_dir = path / "eval"
    if eval_dir.is_dir():
        run.evaluations = [read_evaluation_file(f) for f in sorted(eval_dir.glob("*.json"))]
    return run


def write_evaluation_file(
    out: str | Path,
    evaluations: dict[str, Evaluation],
    *,
    split: str,
    model: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write evaluations (by IoU type) as JSON atomically; :func:`read_evaluation_file` reads it back."""
    from fusereview.evaluation.report import write_text_atomic

    data = {
        "format": "fusereview-evaluation/1",
        "split": split,
        "model": model,
        **(extra or {}),
        "evaluations": {t: e.to_dict() for t, e in evaluations.items()},
    }
    return write_text_atomic(json.dumps(data), Path(out))
