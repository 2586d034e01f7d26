"""An endless, resumable stream of training samples, indexed by optimizer step.

Position ``k`` of the stream is item ``permutation(e)[k mod n]`` of epoch
``e = k // n``, each epoch's permutation drawn from ``default_rng([seed, e])``.
Step ``s`` of a run with ``W`` processes of batch ``B`` reads positions
``s·W·B + r·B … s·W·B + r·B + B − 1`` on rank ``r``. So what a step sees depends only
on the seed, the step, the batch size and the number of processes: a run resumed at
step ``s`` reads exactly what the uninterrupted run read, with any number of
data-loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import numpy as np
import torch

from pconv.data.dataset import InpaintingDataset

__all__ = ["EpochStream", "StepSampler"]


class EpochStream(torch.utils.data.Dataset):
    """``dataset`` reshuffled every epoch, addressed by stream position (any int ≥ 0)."""

    def __init__(self, dataset: InpaintingDataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        self._cached: tuple[int, np.ndarray] | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        return self._cached[1]

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, offset = divmod(position, len(self.dataset))
        return self.dataset.sample(int(self._permutation(epoch)[offset]), epoch)


class StepSampler(torch.utils.data.Sampler[int]):
    """Endless stream positions for one process, from ``start_step`` on (see the module doc)."""

    def __init__(self, batch_size: int, *, rank: int = 0, world_size: int = 1, start_step: int = 0) -> None:
        self.batch_size, self.rank, self.world_size, self.start_step = (
            batch_size,
            rank,
            world_size,
            start_step,
        )

    def __iter__(self) -> Iterator[int]:
        for step in count(self.start_step):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
