"""Inference: :class:`Inpainter`, :class:`Upscaler`, image files kept intact, high-resolution windows."""

from pconv.images import ImageWriteError, Picture, read_picture, write_picture
from pconv.inference.inpainter import DEFAULT_CONTEXT, DEFAULT_MAX_PIXELS, EmptyMaskWarning, Inpainter
from pconv.inference.upscaler import Upscaler

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_MAX_PIXELS",
    "EmptyMaskWarning",
    "ImageWriteError",
    "Inpainter",
    "Picture",
    "Upscaler",
    "read_picture",
    "write_picture",
]
