"""The paper's augmentation of mask files for training: dilation, rotation, translation, crop."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from pconv.masks.io import resize_hole

__all__ = ["augment_hole"]


def augment_hole(hole: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A randomly transformed ``size``×``size`` copy of ``hole`` (bool, True = hole).

    In order: dilation by a 3, 5 or 7 px square (half of the time), rotation by any
    angle with translation of up to a fifth of the size (uncovered area is known),
    a random square crop of 60–100 % of the shorter side, and a nearest-neighbour
    resize to ``size``.
    """
    image = Image.fromarray(np.asarray(hole, np.uint8) * 255)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.MaxFilter(int(rng.choice([3, 5, 7]))))
    width, height = image.size
    shift = (rng.uniform(-0.2, 0.2) * width, rng.uniform(-0.2, 0.2) * height)
    image = image.rotate(rng.uniform(0, 360), Image.Resampling.NEAREST, translate=shift, fillcolor=0)
    side = max(1, round(min(width, height) * rng.uniform(0.6, 1.0)))
    left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    cropped = np.asarray(image.crop((left, top, left + side, top + side))) > 127
    return resize_hole(cropped, (size, size))
