"""Blending a fill into its hole's border, so that it meets the known pixels without a seam.

The network's fill does not quite meet the known pixels around a hole: its colour
jumps at the border, so its error on the hole pixels that touch the border is higher
than that of diffusion methods such as Telea's (MODEL_CARD.md, round 3).
:func:`blend_into_border` corrects the fill by a smooth offset: on each known pixel
that touches the hole, the difference between that pixel and the fill in its hole
neighbours; inside the hole, the harmonic (membrane) interpolation of those
differences, which changes the fill's colour smoothly and leaves its gradients almost
untouched. This is the boundary-offset form of Poisson image editing (Pérez, Gangnet
and Blake, *Poisson Image Editing*, SIGGRAPH 2003; the membrane form of Farbman et
al., *Coordinates for Instant Image Cloning*, SIGGRAPH 2009), with the fill as the
pasted source.

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
    image, fill, mask = image.float(), fill.float(), mask.float()
    blended = fill.clone()
    for i in range(len(fill)):  # each image on its own crop: a batch gives what single calls give
        rows, columns = _hole_box(mask[i, 0])
        if rows is not None:
            crop = (i, slice(None), rows, columns)
            blended[crop] = _blend(image[crop][None], fill[crop][None], mask[crop][None])[0]
    return blended.clamp_(0.0, 1.0)


def _hole_box(mask: Tensor) -> tuple[slice | None, slice | None]:
    """The rows and columns of ``mask``'s (``(H, W)``, 1 = known) holes grown by the one
    pixel of known ring around them (the only pixels the correction reads or writes),
    or ``(None, None)`` without a hole."""
    hole = mask < 0.5
    hole_rows, hole_columns = hole.any(dim=1).nonzero(), hole.any(dim=0).nonzero()
    if len(hole_rows) == 0:
        return None, None
    height, width = hole.shape
    return (
        slice(max(int(hole_rows[0]) - 1, 0), min(int(hole_rows[-1]) + 2, height)),
        slice(max(int(hole_columns[0]) - 1, 0), min(int(hole_columns[-1]) + 2, width)),
    )


def _blend(image: Tensor, fill: Tensor, mask: Tensor) -> Tensor:
    """:func:`blend_into_border` on a crop that holds the holes and their ring, unclamped."""
    hole = 1 - mask
    hole_neighbours = _neighbour_sum(hole)
    ring = mask * (hole_neighbours > 0)  # (N, 1, H, W): known pixels that touch a hole
    fill_next_to_ring = _neighbour_sum(fill * hole) / hole_neighbours.clamp(min=1)
    offset = ring * (image - fill_next_to_ring)
    return fill + hole * _membrane(offset, ring, SWEEPS_PER_LEVEL)


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
