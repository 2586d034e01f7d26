"""Blending a fill into its hole's border, so that it meets the known pixels without a seam.

The network's fill does not quite meet the known pixels around a hole: its error on
the hole pixels that touch the border is about twice that of the pixels 2–3 px further
in (MODEL_CARD.md, round 3). :func:`blend_into_border` corrects the fill by a smooth
offset: on each known pixel that touches the hole, the difference between that pixel
and the fill in its hole neighbours; inside the hole, the harmonic (membrane)
interpolation of those differences, which changes the fill's colour smoothly and
leaves its gradients almost untouched. This is the boundary-offset form of Poisson
image editing (Pérez, Gangnet and Blake, *Poisson Image Editing*, SIGGRAPH 2003; the
membrane form of Farbman et al., *Coordinates for Instant Image Cloning*, SIGGRAPH
2009), with the fill as the pasted source.

Tensors: images ``(N, C, H, W)`` with values in [0, 1]; ``mask`` ``(N, 1, H, W)``
with 1 = known, 0 = hole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["blend_into_border"]

#: Jacobi sweeps at each level of the coarse-to-fine solve.
SWEEPS_PER_LEVEL = 20
#: Sides at and below this size are solved from the mean boundary value.
_COARSEST_SIDE = 16


def blend_into_border(image: Tensor, fill: Tensor, mask: Tensor) -> Tensor:
    """``fill`` plus a smooth offset in the holes that makes it meet ``image``'s known
    pixels; the known pixels of the result are ``fill``'s (composite it with ``image``).

    Args:
        image: ``(N, C, H, W)``, the known pixels (values in holes are ignored).
        fill: ``(N, C, H, W)``, the network's output.
        mask: ``(N, 1, H, W)``, 1 = known, 0 = hole.

    Returns the corrected fill clamped to [0, 1], float32. An image without holes or
    without known pixels comes back as ``fill``.
    """
    fill, mask = fill.float(), mask.float()
    hole = 1 - mask
    hole_neighbours = _neighbour_sum(hole)
    ring = mask * (hole_neighbours > 0)  # (N, 1, H, W): known pixels that touch a hole
    fill_next_to_ring = _neighbour_sum(fill * hole) / hole_neighbours.clamp(min=1)
    offset = ring * (image.float() - fill_next_to_ring)
    correction = _membrane(offset, ring, SWEEPS_PER_LEVEL)
    return (fill + hole * correction).clamp_(0.0, 1.0)


def _neighbour_sum(x: Tensor) -> Tensor:
    """Sum of each pixel's four neighbours, the image edge mirrored (a zero-flux border)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]


def _membrane(values: Tensor, known: Tensor, sweeps: int) -> Tensor:
    """The harmonic function equal to ``values`` where ``known`` is 1, solved coarse to
    fine: each level starts from the upsampled coarser solution and runs ``sweeps``
    Jacobi sweeps."""
    if min(values.shape[-2:]) > _COARSEST_SIDE:
        coverage = F.avg_pool2d(known, 2, ceil_mode=True)
        coarse_values = F.avg_pool2d(values * known, 2, ceil_mode=True) / coverage.clamp(min=1e-6)
        coarse = _membrane(coarse_values, (coverage > 0).float(), sweeps)
        start = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        start = start[..., : values.shape[-2], : values.shape[-1]]
    else:
        total = (values * known).sum((2, 3), keepdim=True)
        start = (total / known.sum((2, 3), keepdim=True).clamp(min=1)).expand_as(values)
    known = known.bool()
    solution = torch.where(known, values, start)
    for _ in range(sweeps):
        solution = torch.where(known, values, _neighbour_sum(solution).mul_(0.25))
    return solution
