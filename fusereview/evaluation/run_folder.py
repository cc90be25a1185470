"""Read a training run folder (the documented format) without importing the training engine.

The engine imports torch; a report must be writable on a laptop that only has the run folder.
"""

from __future__ import annotations

import json
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
            raise RunFolderError(f"{path}: missing (is this a run folder?)")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: expected a JSON object")
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
        raise RunFolderError(f"{path}: evaluations: missing (not a 'fusereview eval --json' file)")
    parsed = {}
    for iou_type, d in evals.items():
        try:
            parsed[iou_type] = Evaluation.from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFolderError(f"{path}: evaluations.{iou_type}: unreadable ({exc!r})") from exc
    return EvaluationFile(
        path,
        str(data.get("split", "")),
        str(data.get("model", "")),
        parsed,
        no_masks=str(data.get("no_masks", "") or ""),
    )


def read_run(run_dir: str | Path) -> RunData:
    """Read a run folder (finished, stopped, failed or still running).

    Raises
    ------
    RunFolderError
        When ``config.json`` is missing or unreadable, or another JSON file is corrupt.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a folder")
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
            except ValueError:
                if n != len(lines):
                    run.bad_lines.append(n)
                continue
            kind = rec.get("type") if isinstance(rec, dict) else None
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
