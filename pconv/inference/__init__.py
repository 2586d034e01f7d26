"""Inference: the :class:`Inpainter`, image files kept intact, and the high-resolution windows."""

from pconv.inference.inpainter import DEFAULT_CONTEXT, DEFAULT_MAX_PIXELS, EmptyMaskWarning, Inpainter
from pconv.inference.pictures import ImageWriteError, Picture, read_picture, write_picture

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_MAX_PIXELS",
    "EmptyMaskWarning",
    "ImageWriteError",
    "Inpainter",
    "Picture",
    "read_picture",
    "write_picture",
]
