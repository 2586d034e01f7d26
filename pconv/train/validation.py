"""Validation during training: fixed cases, scored the same way at every validation.

Inpainting (:class:`ValidationSet`): case ``i`` is the centre crop of validation image
``i`` with a hole from bucket ``i mod 6 + 1``, touching the border on every other round
of six (for crops under 240 px, whose band-free interior is too small for large holes,
the generator decides). Holes come from the
mask generator (seeded per case) or, with a mask folder (e.g. the NVIDIA test masks),
from that folder's masks of the bucket, measured from their pixels and resized to the
crop with nearest neighbour.

Super-resolution (:class:`SuperResolutionValidationSet`): the centre crops of the
first images, the scales in turn.

The cases never change during a run, so the numbers are comparable from step to step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from pconv.data import InpaintingDataset, SuperResolutionDataset
from pconv.eval import detail, l1_percent, psnr, ssim
from pconv.functional import composite
from pconv.masks import (
    BORDER_MARGIN,
    BUCKETS,
    generate_mask,
    hole_to_mask,
    read_mask,
    resize_hole,
    scan_masks,
)
from pconv.models import PConvUNet

__all__ = ["SuperResolutionValidationSet", "ValidationSet", "image_grid"]


@dataclass
class ValidationSet:
    """Fixed inpainting validation cases. The network sees the images' known pixels;
    its results are composites (known pixels from the image, holes from the output).

    Attributes:
        images: the ground truth, ``(V, 3, S, S)`` in [0, 1].
        masks: ``(V, 1, S, S)``, 1 = known, 0 = hole.
        groups: ``(V,)``: each case's group, its hole-ratio bucket here.
        inputs: the network's inputs ``(V, 3, S, S)``: ``images * masks``.
    """

    images: Tensor
    masks: Tensor
    groups: Tensor
    inputs: Tensor

    #: How per-group scores are named: ``psnr/bucket3``.
    group: ClassVar[str] = "bucket"
    #: Whether the detail in holes is scored (it needs holes thick enough to erode).
    scores_detail: ClassVar[bool] = True

    @classmethod
    def build(
        cls, folder: str | Path, *, crop: int, limit: int, masks: str | Path | None = None, seed: int = 0
    ) -> ValidationSet:
        dataset = InpaintingDataset(folder, crop_size=crop, train=False)
        count = min(limit, len(dataset))
        buckets = [i % len(BUCKETS) + 1 for i in range(count)]
        # Where the band-free interior is too small for bucket 6, the generator chooses.
        roomy = (crop - 2 * BORDER_MARGIN) ** 2 >= 0.75 * crop**2
        borders = [(i // len(BUCKETS)) % 2 == 1 if roomy else None for i in range(count)]
        if masks is None:
            holes = [
                generate_mask(crop, crop, bucket=b, border=border, seed=seed * 1_000_003 + i)
                for i, (b, border) in enumerate(zip(buckets, borders, strict=True))
            ]
        else:
            holes = _holes_from_folder(masks, buckets, borders, crop)
        images = torch.stack([dataset.sample(i, 0)[0] for i in range(count)])
        mask_batch = torch.cat([hole_to_mask(hole) for hole in holes])
        return cls(images, mask_batch, torch.tensor(buckets), images * mask_batch)

    @torch.no_grad()
    def evaluate(self, model: PConvUNet, device: torch.device, batch_size: int = 8) -> dict[str, float]:
        """Mean L1 (%), PSNR, SSIM and (inpainting) detail in holes of the results over all
        cases and per bucket or scale (keys ``l1``, ``psnr``, ``ssim``, ``detail``,
        ``psnr/bucket3`` or ``psnr/x4`` …). Detail (:func:`~pconv.eval.detail`) is the
        mean over the cases that define it, NaN where none does (holes too thin to erode)."""
        scores = defaultdict(list)
        for first in range(0, len(self.images), batch_size):
            results = self.results(model, device, slice(first, first + batch_size))
            targets = self.images[first : first + batch_size]
            scores["l1"].append(l1_percent(results, targets))
            scores["psnr"].append(psnr(results, targets))
            scores["ssim"].append(ssim(results, targets))
            if self.scores_detail:
                scores["detail"].append(detail(results, targets, 1 - self.masks[first : first + batch_size]))
        means = {}
        for name, values in scores.items():
            values = torch.cat(values)
            means[name] = values.nanmean().item()
            for group in self.groups.unique().tolist():
                means[f"{name}/{self.group}{group}"] = values[self.groups == group].nanmean().item()
        return means

    def results(self, model: PConvUNet, device: torch.device, cases: slice) -> Tensor:
        """The network's results for ``cases``, on the CPU, quantised to 8 bits.
        Inference also blends fills into their borders (pconv.inference.blending);
        validation scores the network alone."""
        output = _predict(model, device, self.inputs[cases], self.masks[cases])
        return (self._result(output, cases) * 255).round().div(255)

    def _result(self, output: Tensor, cases: slice) -> Tensor:
        """The result of the network's ``output`` for ``cases``: the composite."""
        return composite(self.images[cases], output, self.masks[cases])

    def grid(self, model: PConvUNet, device: torch.device, count: int = 6) -> Tensor:
        """``(3, count·S, 4·S)`` image: per case the input (holes white), output, composite, ground truth."""
        images, masks, inputs = self.images[:count], self.masks[:count], self.inputs[:count]
        output = _predict(model, device, inputs, masks)
        return image_grid([inputs + (1 - masks), output, composite(images, output, masks), images])


@dataclass
class SuperResolutionValidationSet(ValidationSet):
    """Fixed super-resolution validation cases (:mod:`pconv.superres`). The network sees
    the canvases (``inputs``: the low-resolution image spread over the grid); its
    results are its raw output, scored against the high-resolution ``images``; the
    groups are the scales (``psnr/x4``). Detail is not scored: one-pixel holes have no
    eroded interior."""

    group: ClassVar[str] = "x"
    scores_detail: ClassVar[bool] = False

    @classmethod
    def build(
        cls, folder: str | Path, *, crop: int, limit: int, scales: tuple[int, ...]
    ) -> SuperResolutionValidationSet:
        """Centre crops of the first ``limit`` images, the scales in turn."""
        dataset = SuperResolutionDataset(folder, scales=scales, crop_size=crop, train=False)
        count = min(limit, len(dataset))
        images, masks, canvases = (
            torch.stack(parts) for parts in zip(*map(dataset.sample, range(count), [0] * count), strict=True)
        )
        return cls(images, masks, torch.tensor(list(map(dataset.validation_scale, range(count)))), canvases)

    def _result(self, output: Tensor, cases: slice) -> Tensor:
        """The network's raw output: the canvas's known pixels are low-resolution values."""
        return output


@torch.no_grad()
def _predict(model: PConvUNet, device: torch.device, inputs: Tensor, masks: Tensor) -> Tensor:
    """The model's raw output in eval mode, clamped to [0, 1], float32 on the CPU."""
    was_training = model.training
    model.eval()
    try:
        output, _ = model(inputs.to(device), masks.to(device))
    finally:
        model.train(was_training)
    return output.float().clamp(0, 1).cpu()


def image_grid(columns: list[Tensor]) -> Tensor:
    """Batches ``(N, 3, H, W)`` side by side, one row per item: ``(3, N·H, len(columns)·W)``."""
    rows = torch.cat(columns, dim=3)  # (N, 3, H, K·W)
    return torch.cat(list(rows), dim=1)


def _holes_from_folder(
    folder: str | Path, buckets: list[int], borders: list[bool], crop: int
) -> list[np.ndarray]:
    by_kind = defaultdict(list)
    for info in scan_masks(folder):
        by_kind[info.bucket, info.border].append(info.path)
    holes = []
    for i, (bucket, border) in enumerate(zip(buckets, borders, strict=True)):
        preferred = [by_kind[bucket, border]] if border is not None else []
        candidates = [*preferred, by_kind[bucket, False] + by_kind[bucket, True]]
        candidates = next((paths for paths in candidates if paths), None)
        if candidates is None:
            raise ValueError(f"no mask of bucket {bucket} in {folder} for validation")
        path = candidates[(i // len(BUCKETS)) * 7919 % len(candidates)]
        holes.append(resize_hole(read_mask(path), (crop, crop)))
    return holes
