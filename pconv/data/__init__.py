"""Image datasets for training and validation."""

from pconv.data.dataset import DataError, DataWarning, InpaintingDataset
from pconv.data.images import ImageReadError, read_rgb, to_rgb

__all__ = ["DataError", "DataWarning", "ImageReadError", "InpaintingDataset", "read_rgb", "to_rgb"]
