"""Scale-out prediction with ``torchrun``: shard the images over ranks, merge the results on rank 0.

``torchrun --nproc_per_node N -m fusereview predict ...`` starts N processes with ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` set. Every rank plans the same work from the project's cache (reads
only), predicts every N-th image, and sends its detections to rank 0, the only writer of the
project database (SQLite allows one writer; funnelling writes avoids lock contention).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fusereview.models.base import Predictor
from fusereview.models.predict_job import JobResult, plan, run_work, store_results, summarize


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a ``torchrun`` job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the one that writes and prints)."""
        return self.rank == 0


def dist_env() -> DistEnv | None:
    """The ``torchrun`` environment, or ``None`` when running as a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return DistEnv(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(env: DistEnv, device: str) -> None:
    """Join the process group (NCCL for CUDA, gloo otherwise; gloo also carries Python objects)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(env: DistEnv, requested: str | None) -> str:
    """One GPU per rank (``cuda:LOCAL_RANK``) when CUDA is used, else the requested device."""
    from fusereview.models.base import select_device

    device = select_device(requested)
    if device == "cuda":
        return f"cuda:{env.local_rank}"
    return device


def predict_project_sharded(
    project: Any,
    predictor: Predictor,
    env: DistEnv,
    *,
    split: str | None = None,
    image_ids: Sequence[int] | None = None,
    batch_size: int = 4,
    threshold: float = 0.3,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any] | None:
    """Predict this rank's shard; rank 0 stores every rank's results and returns the counts.

    Returns
    -------
    dict or None
        The counts of :func:`~fusereview.models.predict_job.predict_project` on rank 0, ``None`` elsewhere.
    """
    import torch.distributed as dist

    work, cached, total = plan(
        project, predictor.fingerprint, split=split, image_ids=image_ids, threshold=threshold
    )
    mine = work[env.rank :: env.world_size]
    results, _ = run_work(
        project, predictor, mine, batch_size=batch_size, threshold=threshold, progress=progress
    )
    gathered: list[list[JobResult] | None] = [None] * env.world_size
    dist.all_gather_object(gathered, results)
    if not env.is_main:
        return None
    merged = [r for part in gathered for r in (part or [])]
    stored = store_results(project, predictor.fingerprint, merged, threshold)
    counts = summarize(project, merged, cached=cached, total=total, stored=stored, stopped=False)
    counts["ranks"] = env.world_size
    return counts
