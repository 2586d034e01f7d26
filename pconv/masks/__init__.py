"""Hole masks: generation, hole-ratio buckets, files and conventions.

``hole`` arrays are bool ``(H, W)`` with True = hole; files use 255 = hole; the
tensors the model sees use ``mask`` = 1 for known pixels.
"""

from pconv.masks.buckets import BORDER_MARGIN, BUCKETS, bucket_of, hole_ratio, touches_border
from pconv.masks.folder import MaskInfo, bucket_histogram, load_nvidia_masks, scan_masks
from pconv.masks.generate import MaskGenerator, generate_mask
from pconv.masks.io import (
    MASK_CONVENTIONS,
    MaskError,
    MaskSizeError,
    UnsupportedMaskError,
    check_hole,
    check_mask_size,
    hole_from_image,
    hole_to_mask,
    read_mask,
    resize_hole,
    write_mask,
)

__all__ = [
    "BORDER_MARGIN",
    "BUCKETS",
    "MASK_CONVENTIONS",
    "MaskError",
    "MaskGenerator",
    "MaskInfo",
    "MaskSizeError",
    "UnsupportedMaskError",
    "bucket_histogram",
    "bucket_of",
    "check_hole",
    "check_mask_size",
    "generate_mask",
    "hole_from_image",
    "hole_ratio",
    "hole_to_mask",
    "load_nvidia_masks",
    "read_mask",
    "resize_hole",
    "scan_masks",
    "touches_border",
    "write_mask",
]
