"""pconv: image inpainting with partial convolutions (Liu et al., ECCV 2018).

Mask convention of the tensor API: 1 = known pixel, 0 = hole.
"""

from pconv.functional import composite, pad_to_multiple
from pconv.inference import Inpainter, Upscaler
from pconv.layers import PartialConv2d
from pconv.models import PConvUNet, UNetConfig, list_presets
from pconv.version import __version__

__all__ = [
    "Inpainter",
    "PConvUNet",
    "PartialConv2d",
    "UNetConfig",
    "Upscaler",
    "__version__",
    "composite",
    "list_presets",
    "pad_to_multiple",
]
