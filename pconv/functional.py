"""Tensor helpers shared by the model, inference and training.

Mask convention: ``mask`` is 1 = known, 0 = hole; images are ``(N, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["composite", "pad_to_multiple"]


def composite(image: Tensor, output: Tensor, mask: Tensor) -> Tensor:
    """Known pixels from ``image``, holes from ``output``.

    Args:
        image: ``(N, C, H, W)`` input image (values in holes are ignored).
        output: ``(N, C, H, W)`` network prediction.
        mask: ``(N, 1, H, W)`` or ``(N, C, H, W)``, 1 = known, 0 = hole.

    Known pixels are copied bit-exactly (a select, not ``M·I + (1−M)·O``).
    """
    return torch.where(mask.bool(), image, output)


def pad_to_multiple(
    image: Tensor, mask: Tensor, multiple: int
) -> tuple[Tensor, Tensor, tuple[int, int, int, int]]:
    """Zero-pad ``image`` and ``mask`` so that H and W are multiples of ``multiple``.

    The padding is split evenly between the two sides of each axis and is hole
    (mask 0). Returns ``(image, mask, (left, right, top, bottom))``; undo with
    ``image[..., top:top + H, left:left + W]``.
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    if pad_h == 0 and pad_w == 0:
        return image, mask, pads
    return F.pad(image, pads), F.pad(mask, pads), pads
