"""Image datasets for training and validation."""

from pconv.data.dataset import DataError, DataWarning, InpaintingDataset, SuperResolutionDataset
from pconv.data.images import ImageReadError, read_rgb, to_rgb
from pconv.data.stream import EpochStream, StepSampler

__all__ = [
    "DataError",
    "DataWarning",
    "EpochStream",
    "ImageReadError",
    "InpaintingDataset",
    "StepSampler",
    "SuperResolutionDataset",
    "read_rgb",
    "to_rgb",
]
