"""Folder work spread over processes: which rank this is, which items it owns, and gathering rows to rank 0.

``torchrun --nproc-per-node N -m dfnet.cli inpaint|eval ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; SLURM's ``srun`` sets ``SLURM_PROCID``, ``SLURM_NTASKS`` and
``SLURM_LOCALID`` (the address of rank 0 is ``MASTER_ADDR`` when set, else the node ``srun`` was launched
from). These are the variables Lightning detects for training. The processes talk over gloo: only small
Python objects (per-image rows, failure lists) travel, so CPU-only machines and GPU nodes work alike.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
DEFAULT_PORT = "29500"


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes sharing a folder: rank, how many, and rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ValueError(
                f"rank {self.rank} of {self.world_size} (local {self.local_rank}) is not a valid rank"
            )

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes shared files (reports, summaries)."""
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Item ``index`` of a sorted list is this rank's (round robin: index mod world size)."""
        return index % self.world_size == self.rank

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items of ``items``: every world_size-th one, starting at its rank."""
        return list(items[self.rank :: self.world_size])


SINGLE = Ranks()


def ranks_from_environment(environ: dict[str, str] | None = None) -> Ranks:
    """The ranks torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``) or SLURM (``SLURM_PROCID``/``SLURM_NTASKS``/
    ``SLURM_LOCALID``) give this process; one process when neither is set."""
    env = os.environ if environ is None else environ
    for rank, world, local in (
        ("RANK", "WORLD_SIZE", "LOCAL_RANK"),
        ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    ):
        if env.get(world):
            return Ranks(int(env.get(rank, "0")), int(env[world]), int(env.get(local, "0")))
    return SINGLE


def current_ranks() -> Ranks:
    """The ranks of the initialised process group, or one process when there is none."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), ranks_from_environment().local_rank)
    return SINGLE


@contextlib.contextmanager
def process_group(timeout_minutes: float = 60.0) -> Iterator[Ranks]:
    """Join the gloo process group the environment describes (nothing to join for one process) and leave it."""
    ranks = ranks_from_environment()
    if ranks.world_size == 1 or dist.is_initialized():
        yield current_ranks() if dist.is_initialized() else ranks
        return
    os.environ.setdefault("MASTER_ADDR", os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
    os.environ.setdefault("MASTER_PORT", DEFAULT_PORT)
    dist.init_process_group(
        "gloo",
        rank=ranks.rank,
        world_size=ranks.world_size,
        timeout=datetime.timedelta(minutes=timeout_minutes),
    )
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def rank_device(device: str, ranks: Ranks) -> str:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` when several processes share a node's GPUs; else unchanged."""
    wants_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if ranks.world_size > 1 and wants_cuda:
        return f"cuda:{ranks.local_rank % max(torch.cuda.device_count(), 1)}"
    return device


def gather_to_main(value: Any, ranks: Ranks) -> list[Any] | None:
    """Every rank's ``value`` in rank order on rank 0 (None on the others); ``[value]`` for one process."""
    if ranks.world_size == 1:
        return [value]
    gathered: list[Any] | None = [None] * ranks.world_size if ranks.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def all_gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``value`` in rank order, on every rank."""
    if ranks.world_size == 1:
        return [value]
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, value)
    return gathered
