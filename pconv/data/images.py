"""Reading photos as 8-bit RGB, whatever their file says.

EXIF orientation is applied; greyscale, palette, CMYK and 16-bit images become RGB;
transparent pixels are composited over white (their stored colour is arbitrary).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pconv.files import ImageReadError

__all__ = ["ImageReadError", "read_rgb", "to_rgb"]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` into an upright 8-bit RGB image.

    Raises:
        ImageReadError: the file is missing, truncated, corrupt or not an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"cannot read image {path}: {error}") from error


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB (16-bit scaled down, alpha over white)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.uint32)
        if image.mode != "I" or values.max() > 255:
            values = values // 257  # 0–65535 onto 0–255
        image = Image.fromarray(values.clip(0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        image = Image.fromarray(np.asarray(image).clip(0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image
