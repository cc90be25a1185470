"""Multi-process training through ``torchrun`` and ``torch.distributed`` (DDP).

The same code runs in one process: without ``WORLD_SIZE`` in the environment nothing is initialised,
rank is 0 and the world has size 1. CPU processes use gloo, CUDA processes nccl.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from fusereview.core.errors import FusereviewError


@dataclass
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (no-op when alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, False)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local, True)


def shard(indices: list[int], info: DistInfo) -> list[int]:
    """This process's contiguous slice of a global micro-batch (its size must divide evenly)."""
    if len(indices) % info.world_size:
        raise FusereviewError(
            f"--batch-size: {len(indices)} is not divisible by the {info.world_size} processes"
        )
    n = len(indices) // info.world_size
    return indices[info.rank * n : (info.rank + 1) * n]


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op when alone)."""
    if info.world_size > 1:
        dist.barrier()


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """The main process's value of ``flag`` on every process (a stop request must stop all of them)."""
    if info.world_size <= 1:
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def cleanup(info: DistInfo) -> None:
    """Leave the process group if this module created it."""
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()
