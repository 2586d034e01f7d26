"""The :class:`Upscaler`: super-resolution as inpainting (:mod:`pconv.superres`), any image size.

The image's pixels are spread over a canvas ``scale`` times larger, one per
``scale × scale`` cell, and a model trained for that (``pconv train --task superres``)
fills the rest. Its output replaces every colour value of the canvas: the known pixels
hold a smoothed average of their cell, not the colour of the pixel they sit on (see
:mod:`pconv.superres`). Large canvases are processed window by window like large
inpainting jobs (:mod:`pconv.inference.windows`), so memory stays bounded.

What comes back has the input's kind, mode, depth and metadata; alpha is upscaled with
bicubic interpolation.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from PIL import Image

from pconv.images import ImageLike, Picture, as_picture
from pconv.inference.inpainter import DEFAULT_CONTEXT, DEFAULT_MAX_PIXELS, Inpainter
from pconv.superres import SCALES, check_scale, sparse_canvas
from pconv.weights import WeightsError, default_superres_weights, task_of

__all__ = ["Upscaler"]


class Upscaler:
    """A super-resolution model that upscales images ×2 or ×4.

    Args:
        weights: a ``.safetensors`` file or ``checkpoint.pt`` from ``pconv train --task
            superres``; None loads the super-resolution model installed with the package.
        device, precision, max_pixels, context: as for :class:`Inpainter`; ``max_pixels``
            bounds the upscaled canvas a single network pass sees.

    Raises:
        WeightsError: the weights are missing, unreadable, or not a super-resolution model.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        *,
        precision: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        context: int = DEFAULT_CONTEXT,
    ) -> None:
        weights = default_superres_weights() if weights is None else weights
        self.network = Inpainter(weights, device, precision=precision, max_pixels=max_pixels, context=context)
        metadata = self.network.metadata
        if task_of(metadata) != "superres":
            raise WeightsError(
                f"{weights} is an inpainting model; upscaling needs one trained with "
                "`pconv train --task superres` (or the shipped one: leave out --weights)"
            )
        self.scales = _trained_scales(metadata)
        self.device = self.network.device

    def __repr__(self) -> str:
        weights, device = str(self.network.weights), str(self.device)
        return f"Upscaler(weights={weights!r}, scales={self.scales}, device={device!r})"

    def upscale(self, image: ImageLike, scale: int) -> ImageLike:
        """``image`` ``scale`` times larger in width and height; returns the same kind of image.

        Args:
            image: as for :meth:`Inpainter.inpaint` (PIL image, array, tensor, Picture).
            scale: 2 or 4 (one the model was trained for).

        Raises:
            ValueError: an unsupported scale, or an image pconv cannot read.
        """
        check_scale(scale)
        if scale not in self.scales:
            raise ValueError(
                f"this model was trained for ×{' and ×'.join(map(str, self.scales))}, not ×{scale}"
            )
        picture, restore = as_picture(image)
        colours = picture.colour_channels
        canvas, hole = sparse_canvas(picture.pixels[:, :, :colours], scale)
        if picture.pixels.shape[2] > colours:  # alpha
            alpha = _resize_plane(picture.pixels[:, :, colours], scale)
            canvas = np.concatenate([canvas, alpha[:, :, None]], axis=2)
        upscaled = Picture(canvas, dict(picture.info))
        self.network.fill(upscaled, hole, replace_known=True)
        return restore(upscaled)


def _trained_scales(metadata: dict[str, str]) -> tuple[int, ...]:
    """The scales a super-resolution weights file was trained for: its ``scales`` entry,
    else its training config's (``pconv train`` writes both), else all of :data:`SCALES`."""
    if "scales" in metadata:
        return tuple(json.loads(metadata["scales"]))
    if "training_config" in metadata:
        return tuple(json.loads(metadata["training_config"]).get("scales", SCALES))
    return SCALES


def _resize_plane(plane: np.ndarray, scale: int) -> np.ndarray:
    """One channel ``(h, w)`` resized ×``scale`` with bicubic interpolation, in its own dtype."""
    top = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(plane.dtype, 1.0)
    image = Image.fromarray(plane.astype(np.float32))  # mode F
    size = (plane.shape[1] * scale, plane.shape[0] * scale)
    resized = np.clip(np.asarray(image.resize(size, Image.Resampling.BICUBIC)), 0, top)
    return np.rint(resized).astype(plane.dtype) if top != 1.0 else resized.astype(plane.dtype)
