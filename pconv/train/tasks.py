"""What a training run learns: inpainting, or super-resolution as inpainting.

A :class:`Task` gives the training loop everything that differs between the two: the
training dataset, the validation cases, the network's inputs for a batch and the
metadata written with the weights. The loop itself never asks which task it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor

from pconv.data import InpaintingDataset, PhotoCrops, SuperResolutionDataset
from pconv.train.config import TrainConfig
from pconv.train.validation import SuperResolutionValidationSet, ValidationSet

__all__ = ["TASKS_BY_NAME", "Inpainting", "SuperResolution", "Task", "task_of"]


class Task(ABC):
    """What differs between training tasks; ``name`` is ``TrainConfig.task``'s value."""

    name: ClassVar[str]

    @abstractmethod
    def dataset(self, config: TrainConfig) -> PhotoCrops:
        """The training dataset of ``config.data``."""

    @abstractmethod
    def validation_set(self, config: TrainConfig) -> ValidationSet:
        """The fixed validation cases of ``config.val``."""

    @abstractmethod
    def network_inputs(self, batch: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """``(targets, masks, inputs)`` of a batch of the dataset's items: the ground
        truth ``(N, 3, S, S)``, the masks ``(N, 1, S, S)`` (1 = known) and what the
        network sees ``(N, 3, S, S)``."""

    def metadata(self, config: TrainConfig) -> dict:
        """What the exported weights record about the task."""
        return {"task": self.name}


class Inpainting(Task):
    """Fill holes: photo crops with random holes (or a mask folder's, augmented)."""

    name = "inpaint"

    def dataset(self, config: TrainConfig) -> InpaintingDataset:
        return InpaintingDataset(
            config.data,
            crop_size=config.crop,
            masks=config.masks,
            mask_convention=config.mask_convention,
            seed=config.seed,
        )

    def validation_set(self, config: TrainConfig) -> ValidationSet:
        return ValidationSet.build(
            config.val,
            crop=config.validation_crop,
            limit=config.val_limit,
            masks=config.val_masks,
            seed=config.seed,
        )

    def network_inputs(self, batch: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        images, masks = batch
        return images, masks, images * masks


class SuperResolution(Task):
    """Upscale: the canvases of :mod:`pconv.superres`, one of ``config.scales`` per item."""

    name = "superres"

    def dataset(self, config: TrainConfig) -> SuperResolutionDataset:
        return SuperResolutionDataset(
            config.data, scales=config.scales, crop_size=config.crop, seed=config.seed
        )

    def validation_set(self, config: TrainConfig) -> SuperResolutionValidationSet:
        return SuperResolutionValidationSet.build(
            config.val, crop=config.validation_crop, limit=config.val_limit, scales=config.scales
        )

    def network_inputs(self, batch: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        images, masks, canvases = batch
        return images, masks, canvases

    def metadata(self, config: TrainConfig) -> dict:
        return super().metadata(config) | {"scales": list(config.scales)}


#: The tasks by name; tests check that these are exactly ``pconv.train.config.TASKS``.
TASKS_BY_NAME: dict[str, Task] = {task.name: task for task in (Inpainting(), SuperResolution())}


def task_of(config: TrainConfig) -> Task:
    """The :class:`Task` that ``config.task`` names."""
    return TASKS_BY_NAME[config.task]
