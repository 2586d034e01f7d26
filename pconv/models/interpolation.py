"""Bicubic interpolation of a super-resolution canvas's known pixels, as a normalised convolution.

A ×K canvas (:mod:`pconv.superres`) holds one known pixel per ``K × K`` cell, at
``K·i + (K − 1) // 2``, while the cell's centre, where that colour belongs, lies
``δ = (K − 1) / 2 − (K − 1) // 2`` further on (½ for ×2 and ×4). Weighting every known
pixel by Keys' cubic kernel (a = −½, as Pillow's ``BICUBIC``) of its centre's distance,
in units of K, and dividing by the weights' sum gives bicubic interpolation exactly:
the kernel's shifted copies sum to 1, so the division only matters at the image's
borders, where it renormalises over the pixels that exist instead of padding. It is a
partial convolution with fixed weights (Knutsson's normalised convolution).

The scale of each canvas is read from its mask: ``K = √(H·W / known pixels)``, rounded,
so the canvas must not be padded (:meth:`PConvUNet.forward` interpolates before padding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["cubic_kernel", "grid_scales", "interpolate_known_grid"]

#: Where the weights' sum is smaller than this, no known pixel is in reach: 0 there.
_MIN_WEIGHT = 1e-3


def cubic_kernel(scale: int) -> tuple[Tensor, int]:
    """The 1-D weights of a ×``scale`` canvas's known pixels and the tap at offset 0.

    Returns ``(weights, centre)``: ``weights[centre + d]`` weighs the known pixel ``d``
    pixels after the output pixel (float64, ``4·scale`` taps for even scales).
    """
    delta = ((scale - 1) % 2) / 2
    offsets = torch.arange(-2 * scale, 2 * scale + 1, dtype=torch.float64)
    distance = ((offsets + delta) / scale).abs()  # the known pixel's cell centre is at d + δ
    weights = torch.where(
        distance <= 1,
        1.5 * distance**3 - 2.5 * distance**2 + 1,
        torch.where(distance < 2, -0.5 * distance**3 + 2.5 * distance**2 - 4 * distance + 2, 0.0),
    )
    nonzero = weights.nonzero().flatten()
    first, last = int(nonzero[0]), int(nonzero[-1])
    return weights[first : last + 1], 2 * scale - first


def grid_scales(mask: Tensor) -> list[int]:
    """The scale of each canvas in a batch, ``round(√(H·W / known))``, from ``mask``
    ``(N, 1, H, W)`` (1 = known); 0 for a canvas with no known pixel."""
    known = mask.flatten(1).sum(1).tolist()
    pixels = mask.shape[-2] * mask.shape[-1]
    return [round(math.sqrt(pixels / count)) if count else 0 for count in known]


def interpolate_known_grid(image: Tensor, mask: Tensor) -> Tensor:
    """Bicubic interpolation of the known pixels of super-resolution canvases.

    Args:
        image: ``(N, C, H, W)``; values in the holes are ignored.
        mask: ``(N, 1, H, W)``, 1 = known: one known pixel per ``K × K`` cell.

    Returns:
        ``(N, C, H, W)``, computed in float32 (or ``image``'s dtype if wider), also under
        autocast: the interpolation everywhere (the known pixels too, which hold their
        cell's average, not their own pixel's colour), and 0 where no known pixel is
        within 2·K pixels.
    """
    dtype = torch.promote_types(image.dtype, torch.float32)
    image = image.to(dtype)
    base = torch.zeros_like(image)
    scales = grid_scales(mask)
    with torch.autocast(image.device.type, enabled=False):
        for scale in sorted(set(scales) - {0}):
            rows = [i for i, s in enumerate(scales) if s == scale]
            base[rows] = _normalised_cubic(image[rows], mask[rows], scale)
    return base


def _normalised_cubic(image: Tensor, mask: Tensor, scale: int) -> Tensor:
    weights, centre = cubic_kernel(scale)
    weights = weights.to(image.dtype).to(image.device)
    sums = _separable(torch.cat([image * mask, mask.to(image.dtype)], dim=1), weights, centre)
    values, total = sums[:, :-1], sums[:, -1:]
    reached = total.abs() >= _MIN_WEIGHT
    return torch.where(reached, values / torch.where(reached, total, 1.0), 0.0)


def _separable(x: Tensor, weights: Tensor, centre: int) -> Tensor:
    """``Σ_d weights[centre + d] · x[y + d]`` along rows, then columns; zero outside ``x``."""
    channels, taps = x.shape[1], len(weights)
    before, after = centre, taps - 1 - centre
    rows = weights.view(1, 1, 1, taps).expand(channels, 1, 1, taps)
    x = F.conv2d(F.pad(x, (before, after, 0, 0)), rows, groups=channels)
    columns = weights.view(1, 1, taps, 1).expand(channels, 1, taps, 1)
    return F.conv2d(F.pad(x, (0, 0, before, after)), columns, groups=channels)
