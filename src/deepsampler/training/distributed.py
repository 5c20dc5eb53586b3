"""Process-group set-up for ``torchrun`` (DDP) and the resumable per-rank sampler.

Under ``torchrun --nproc_per_node N`` the environment names this process's ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``; without it the run is a single process and nothing here
talks to a process group.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files, logs and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` set up (NCCL on CUDA, gloo on CPU), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=world,
    )
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


class ResumableSampler(Sampler[int]):
    """Indices of one epoch for one rank, starting ``start_batch`` batches in.

    The dataset draws item ``i`` of epoch ``e`` from ``(seed, e, i)`` alone, so the order can
    stay sequential: rank ``r`` of ``w`` takes ``i = r, r + w, ...`` (disjoint across ranks), cut
    to whole batches so every rank runs the same number of steps. Skipping ``start_batch`` batches
    is how a resumed run continues at the exact example where it stopped.
    """

    def __init__(
        self, num_examples: int, batch_size: int, rank: int, world_size: int, start_batch: int = 0
    ) -> None:
        self.batches = num_examples // (batch_size * world_size)
        if self.batches < 1:
            raise ValueError(
                f"an epoch of {num_examples} examples holds no full batch of {batch_size} x "
                f"{world_size} processes; raise data.examples_per_epoch"
            )
        if not 0 <= start_batch <= self.batches:
            raise ValueError(f"start_batch {start_batch} outside [0, {self.batches}]")
        self.indices = list(range(rank, num_examples, world_size))[: self.batches * batch_size]
        self.batch_size = batch_size
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices[self.start_batch * self.batch_size :])

    def __len__(self) -> int:
        return len(self.indices) - self.start_batch * self.batch_size
