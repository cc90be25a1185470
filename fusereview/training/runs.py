"""Run folders: ``config.json``, ``env.json``, ``metrics.jsonl``, ``checkpoints/{last,best}``.

Any run folder can be read back (finished or still growing) by :func:`read_metrics` and
:class:`MetricsFollower`, which is what the GUI uses to plot a run trained elsewhere.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from fusereview.core.files import write_json_atomic as _write_json


def write_json_atomic(data: Any, out: Path) -> None:
    """Write JSON (indented, readable) atomically: see :func:`fusereview.core.files.write_json_atomic`."""
    _write_json(data, out, indent=1)


METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def env_info(device: str) -> dict[str, Any]:
    """Versions, device, GPU name and memory (what ``env.json`` holds)."""
    import torch
    import transformers

    from fusereview import __version__

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "fusereview": __version__,
        "device": device,
        "gpu_name": None,
        "gpu_memory_gb": None,
        "cpu_count": os.cpu_count(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info["gpu_name"] = props.name
        info["gpu_memory_gb"] = round(props.total_memory / 2**30, 2)
    return info


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (recursively)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class RunFolder:
    """The files of one training run.

    Parameters
    ----------
    path:
        The run folder (created when missing).
    """

    def __init__(self, path: str | Path) -> None:
        # absolute: the path ends up in the project (runs row, active model) and in messages
        # that are used from other folders ("resume with --resume ...")
        self.path = Path(path).expanduser().resolve()
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last"
        self.best = self.checkpoints / "best"

    def create(self, config: dict[str, Any], env: dict[str, Any]) -> None:
        """Write ``config.json`` and ``env.json`` (a fresh run)."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        write_json_atomic(config, self.path / "config.json")
        write_json_atomic(env, self.path / "env.json")

    def config(self) -> dict[str, Any]:
        """The run's ``config.json``."""
        return json.loads((self.path / "config.json").read_text())

    def append(self, record: dict[str, Any]) -> None:
        """Append one line to ``metrics.jsonl`` and flush it to disk (a follower may be reading)."""
        # strict JSON: a NaN/inf value (the step that diverged) is written as null, so that every
        # JSON reader (jq, a browser, the report) can read the file; the end record names it
        line = json.dumps(_finite(record), default=_json_default, allow_nan=False)
        with open(self.metrics_path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def truncate_after_step(self, step: int) -> None:
        """Drop records written after ``step`` (a resumed run replays them)."""
        if not self.metrics_path.exists():
            return
        keep = [
            r for r in read_metrics(self.path) if r.get("type") != "end" and int(r.get("step", -1)) <= step
        ]
        tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        os.replace(tmp, self.metrics_path)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a run's ``metrics.jsonl`` (a half-written last line is ignored)."""
    return MetricsFollower(run_dir).poll()


class MetricsFollower:
    """Read ``metrics.jsonl`` incrementally, as it grows (a live or a synced remote run).

    Parameters
    ----------
    run_dir:
        The run folder (the file may not exist yet).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self._offset = 0
        self._inode: int | None = None

    def poll(self) -> list[dict[str, Any]]:
        """Records appended since the last call; starts over if the file was replaced (a resume)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if self._inode is not None and (st.st_ino != self._inode or st.st_size < self._offset):
            self._offset = 0
        self._inode = st.st_ino
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        out = []
        for raw in chunk[: end + 1].splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue  # a corrupt line must not stop the plots
        return out


def list_runs(runs_root: str | Path) -> list[dict[str, Any]]:
    """Run folders under ``runs_root`` with their status and best mAP (newest first)."""
    root = Path(runs_root)
    out = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if not (d / "config.json").exists():
            continue
        recs = read_metrics(d)
        end = next((r for r in reversed(recs) if r.get("type") == "end"), None)
        out.append(
            {
                "path": str(d),
                "name": d.name,
                "status": end["status"] if end else "running or interrupted",
                "best_map": end.get("best_map") if end else None,
                "mtime": (d / "metrics.jsonl").stat().st_mtime
                if (d / "metrics.jsonl").exists()
                else d.stat().st_mtime,
            }
        )
    return sorted(out, key=lambda r: -r["mtime"])


def new_run_dir(runs_root: str | Path, name: str = "run") -> Path:
    """A fresh ``<runs_root>/<name>-YYYYmmdd-HHMMSS[-n]`` path (not created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_root) / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{n}")
        n += 1
    return path
