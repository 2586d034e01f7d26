"""Image datasets for training and validation."""

from pconv.data.dataset import DataError, DataWarning, InpaintingDataset, PhotoCrops, SuperResolutionDataset
from pconv.data.stream import EpochStream, StepSampler
from pconv.images import ImageReadError, read_rgb, to_rgb

__all__ = [
    "DataError",
    "DataWarning",
    "EpochStream",
    "ImageReadError",
    "InpaintingDataset",
    "PhotoCrops",
    "StepSampler",
    "SuperResolutionDataset",
    "read_rgb",
    "to_rgb",
]
