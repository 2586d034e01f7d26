"""Multi-process training under ``torchrun``: process group setup and cross-rank checks.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them training
runs in a single process. CUDA ranks use NCCL and GPU ``LOCAL_RANK``; CPU ranks use gloo.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "Distributed",
    "all_ranks_true",
    "check_replicas_identical",
    "mean_over_ranks",
    "setup_distributed",
]


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes checkpoints."""
        return self.rank == 0


def setup_distributed(device_type: str) -> Distributed:
    """Join the ``torchrun`` process group if there is one (``device_type``: ``cuda`` or ``cpu``)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Distributed()
    context = Distributed(
        int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    )
    if device_type == "cuda":
        torch.cuda.set_device(context.local_rank)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return context


def all_ranks_true(flag: bool, device: torch.device, context: Distributed) -> bool:
    """Whether ``flag`` holds on every rank (a collective: every rank must call it)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def mean_over_ranks(values: dict[str, float], device: torch.device, context: Distributed) -> dict[str, float]:
    """Each value averaged over the ranks (a collective)."""
    if not context.enabled:
        return values
    stacked = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(stacked)
    return dict(zip(values, (stacked / context.world_size).tolist(), strict=True))


def check_replicas_identical(model: nn.Module, device: torch.device, context: Distributed) -> bool:
    """Whether every rank holds bit-identical parameters (a collective).

    Batch-norm running statistics are left out: each rank updates them from its own
    batch, and DDP copies rank 0's to the others at the start of every forward pass
    (rank 0's are the ones saved).
    """
    if not context.enabled:
        return True
    digest = hashlib.sha256()
    for tensor in model.parameters():
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    mine = torch.tensor(list(digest.digest()), dtype=torch.uint8, device=device)
    gathered = [torch.empty_like(mine) for _ in range(context.world_size)]
    dist.all_gather(gathered, mine)
    return all(torch.equal(other, mine) for other in gathered)
