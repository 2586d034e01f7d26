"""Mask files: reading, writing and the user-facing conventions.

Files use the convention of image editors and other inpainting tools: **white (255)
= hole, black (0) = keep** (``"white-hole"``). ``"black-hole"`` reads files in the
paper's sense (white = known). Whatever the file, a mask is read into ``hole``, a
bool ``(H, W)`` array with True = hole, and becomes the internal tensor ``mask``
(1 = known) only through :func:`hole_to_mask`.

Reading rules:

- **Threshold.** Pixels are binarised at half of the full range: a pixel is *white*
  if its value is at least 128 (8-bit; 32768 for 16-bit, 0.5 for float images).
  Antialiased brush edges and JPEG noise thus fall on the nearer side.
- **Channels.** With ``channel="auto"``, an image with a varying alpha channel is read
  from its alpha (opaque = painted = white), as a brush layer on a transparent
  background would be; otherwise from its luminance (ITU-R 601). ``"alpha"`` and
  ``"luminance"`` force one or the other.
- **Size.** Masks are resized only with nearest neighbour (:func:`resize_hole`), and
  only on request; a mask whose size differs from its image's is a
  :class:`MaskSizeError` naming both sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pconv.images import without_palette

__all__ = [
    "MASK_CONVENTIONS",
    "MaskChannel",
    "MaskConvention",
    "MaskError",
    "MaskSizeError",
    "UnsupportedMaskError",
    "check_hole",
    "check_mask_size",
    "hole_from_image",
    "hole_from_user_mask",
    "hole_to_mask",
    "read_mask",
    "resize_hole",
    "write_mask",
]

MaskConvention = Literal["white-hole", "black-hole"]
MaskChannel = Literal["auto", "alpha", "luminance"]
MASK_CONVENTIONS: tuple[str, ...] = ("white-hole", "black-hole")
MASK_CHANNELS: tuple[str, ...] = ("auto", "alpha", "luminance")


class MaskError(ValueError):
    """A mask file that cannot be used: unreadable, corrupt, or of the wrong size."""


class MaskSizeError(MaskError):
    """A mask whose size differs from its image's."""


class UnsupportedMaskError(MaskError):
    """A mask file that is not in an image format pconv reads."""


def hole_from_image(
    image: Image.Image, convention: MaskConvention = "white-hole", channel: MaskChannel = "auto"
) -> np.ndarray:
    """Binarise a mask image into ``hole``: bool ``(H, W)``, True = hole (rules above)."""
    if convention not in MASK_CONVENTIONS:
        raise ValueError(f"mask convention must be one of {MASK_CONVENTIONS}, got {convention!r}")
    if channel not in MASK_CHANNELS:
        raise ValueError(f"mask channel must be one of {MASK_CHANNELS}, got {channel!r}")
    white = _white_pixels(_mask_plane(image, channel))
    return white if convention == "white-hole" else ~white


def read_mask(
    file: str | Path | BinaryIO,
    convention: MaskConvention = "white-hole",
    channel: MaskChannel = "auto",
    *,
    name: str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read a mask file into ``hole``: bool ``(H, W)``, True = hole.

    Args:
        file: a path, or a binary file object positioned at the start (an upload).
        name: what to call the file in errors (default: its path, or ``"mask"``).
        size: the image's ``(width, height)``: a mask of another size is refused
            from its header, before it is decoded.

    Raises:
        MaskSizeError: the mask's size is not ``size``.
        UnsupportedMaskError: the file is not in an image format pconv reads.
        MaskError: the file is missing, unreadable or corrupt.
    """
    name = name or (str(file) if isinstance(file, str | Path) else "mask")
    try:
        with Image.open(file) as image:
            if size is not None:
                check_mask_size(image.size, size, f"mask {name}")
            image.load()
            return hole_from_image(image, convention, channel)
    except UnidentifiedImageError as error:  # its text names the file object of an upload
        raise UnsupportedMaskError(f"cannot read mask {name}: not an image format pconv reads") from error
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise MaskError(f"cannot read mask {name}: {error}") from error


def write_mask(path: str | Path, hole: np.ndarray) -> None:
    """Write ``hole`` (bool ``(H, W)``, True = hole) as an 8-bit PNG, 255 = hole."""
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8), mode="L").save(path)


def hole_to_mask(hole: np.ndarray) -> torch.Tensor:
    """The internal mask of a ``hole`` array: float32 ``(1, 1, H, W)``, 1 = known, 0 = hole."""
    return torch.from_numpy(~np.asarray(hole, bool)).float()[None, None]


def resize_hole(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``hole`` to ``size`` = ``(width, height)`` with nearest neighbour (never bilinear).

    A ``hole`` already of that size is returned as it is.
    """
    if hole.shape == (size[1], size[0]):
        return hole
    image = Image.fromarray(np.asarray(hole, np.uint8) * 255)
    return np.asarray(image.resize(size, Image.Resampling.NEAREST)) > 127


def check_mask_size(
    mask_size: tuple[int, int],
    image_size: tuple[int, int],
    mask_name: str = "mask",
    image_name: str = "image",
) -> None:
    """Raise :class:`MaskSizeError` unless the ``(width, height)`` sizes are equal."""
    if tuple(mask_size) != tuple(image_size):
        raise MaskSizeError(
            f"{mask_name} is {mask_size[0]}×{mask_size[1]} but {image_name} is "
            f"{image_size[0]}×{image_size[1]}; masks are never resized silently: "
            "resize it with nearest neighbour first"
        )


def check_hole(hole: np.ndarray) -> bool:
    """Whether ``hole`` (bool ``(H, W)``, True = hole) has a hole at all.

    Raises:
        MaskError: the hole covers the whole image: nothing to inpaint from.
    """
    if hole.all():
        raise MaskError("the mask covers the whole image: there is no known pixel to inpaint from")
    return bool(hole.any())


def hole_from_user_mask(
    mask: Image.Image | np.ndarray | torch.Tensor,
    convention: MaskConvention = "white-hole",
    channel: MaskChannel = "auto",
) -> np.ndarray:
    """bool ``(H, W)``, True = hole, of a mask given in Python: a PIL image (read as
    mask files are), or a bool / 0-1 / 0-255 array or tensor ``(H, W)`` (or with a
    size-1 channel axis), True / 1 / 255 = hole in the ``"white-hole"`` convention.

    Raises:
        MaskError: not binary, or not ``(H, W)``. TypeError: not a mask.
    """
    if isinstance(mask, Image.Image):
        return hole_from_image(mask, convention, channel)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a PIL image, a numpy array or a tensor, not {type(mask).__name__}")
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[2]):
        mask = mask.reshape(mask.shape[:2] if mask.shape[2] == 1 else mask.shape[1:])
    if mask.ndim != 2:
        raise MaskError(f"mask arrays must be (H, W), got {mask.shape}")
    if mask.dtype != bool:
        top = mask.max()
        if top not in (0, 1, 255) or not ((mask == 0) | (mask == top)).all():
            raise MaskError(
                f"mask arrays must be binary (bool, 0/1 or 0/255); this one holds values from "
                f"{mask.min()} to {top}: threshold it first"
            )
    white = mask > 0
    return white if convention == "white-hole" else ~white


def _mask_plane(image: Image.Image, channel: MaskChannel) -> np.ndarray:
    """The single plane a mask is read from (alpha or luminance), in the image's range."""
    image = without_palette(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA")
    if channel == "alpha" and not has_alpha:
        raise MaskError(f"mask has no alpha channel (mode {image.mode}); use channel 'luminance'")
    if has_alpha:
        alpha = np.asarray(image.getchannel("A"))
        if channel == "alpha" or (channel == "auto" and alpha.min() != alpha.max()):
            return alpha
    if image.mode in ("1", "L", "I;16", "I;16B", "I;16L", "I", "F"):
        return np.asarray(image)
    return np.asarray(image.convert("L"))


def _white_pixels(plane: np.ndarray) -> np.ndarray:
    """Pixels at or above half of the full range of ``plane``'s type."""
    if plane.dtype == bool:
        return plane.copy()
    if np.issubdtype(plane.dtype, np.floating):
        return plane >= 0.5
    if plane.dtype == np.uint8:
        return plane >= 128
    return plane >= 32768  # 16-bit (PIL reads them as uint16 or int32)
