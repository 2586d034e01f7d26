"""Super-resolution as inpainting (the paper's extension; SPEC §7): the sampling grid.

To upscale by ``K``, low-resolution pixel ``(i, j)`` is placed at ``(K·i + o, K·j + o)``
of a canvas ``K`` times larger, and every other canvas pixel is a hole that the
network fills. The offset is ``o = (K − 1) // 2``: 0 for ×2, 1 for ×4.

Why that offset: a low-resolution pixel stands for its whole ``K × K`` cell, whose
centre is at ``(K − 1) / 2``. For even ``K`` the centre falls between pixels, so no
integer offset is exact; ``(K − 1) // 2`` is the pixel nearest the centre, rounding
towards the top-left, which keeps the known pixels as close as possible to where their
values belong (the ×4 grid sits 0.5 px, not 1.5 px, from the cell centres). The
network is trained with the same offset, so it learns the remaining half-pixel shift.

Low-resolution images for training and evaluation are made as the usual benchmarks
make them: the high-resolution image is cropped to a multiple of ``K`` (its top-left
part) and downscaled with antialiased bicubic interpolation (Pillow's ``BICUBIC``,
like MATLAB's ``imresize``). A known pixel therefore holds a smoothed average of the
colours around its cell, not the colour of the canvas pixel it sits on, which is why
upscaling keeps the network's output everywhere instead of pasting the known pixels back.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["SCALES", "check_scale", "downscale", "grid_offset", "known_grid", "modcrop", "sparse_canvas"]

#: The scale factors pconv trains, ships and evaluates.
SCALES = (2, 4)


def check_scale(scale: int) -> None:
    """Raise ValueError unless ``scale`` is one of :data:`SCALES`."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")


def grid_offset(scale: int) -> int:
    """Where a low-resolution pixel sits inside its ``scale × scale`` cell (rows and columns)."""
    check_scale(scale)
    return (scale - 1) // 2


def known_grid(height: int, width: int, scale: int) -> np.ndarray:
    """bool ``(height, width)``: True at the canvas pixels that hold a low-resolution pixel.

    ``height`` and ``width`` must be multiples of ``scale``.
    """
    offset = grid_offset(scale)
    if height % scale or width % scale:
        raise ValueError(f"a ×{scale} canvas must be a multiple of {scale} in size, got {width}×{height}")
    known = np.zeros((height, width), bool)
    known[offset::scale, offset::scale] = True
    return known


def sparse_canvas(low: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The canvas of a low-resolution image and its hole.

    Args:
        low: ``(h, w, C)`` pixels of any dtype.

    Returns:
        ``(canvas, hole)``: ``(scale·h, scale·w, C)`` of ``low``'s dtype, zero in the
        holes, and bool ``(scale·h, scale·w)``, True = hole.
    """
    height, width = low.shape[0] * scale, low.shape[1] * scale
    known = known_grid(height, width, scale)
    canvas = np.zeros((height, width, *low.shape[2:]), low.dtype)
    canvas[known] = low.reshape(-1, *low.shape[2:])
    return canvas, ~known


def modcrop(image: Image.Image, scale: int) -> Image.Image:
    """The top-left part of ``image`` whose sides are multiples of ``scale``."""
    return image.crop((0, 0, image.width - image.width % scale, image.height - image.height % scale))


def downscale(image: Image.Image, scale: int) -> Image.Image:
    """The low-resolution version of ``image``: :func:`modcrop`, then antialiased bicubic."""
    check_scale(scale)
    image = modcrop(image, scale)
    if min(image.size) < scale:
        raise ValueError(f"a {image.width}×{image.height} image is too small to downscale ×{scale}")
    return image.resize((image.width // scale, image.height // scale), Image.Resampling.BICUBIC)
