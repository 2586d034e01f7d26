"""The paper's loss and the VGG-16 features it uses."""

from pconv.losses.inpainting import InpaintingLoss, LossWeights, gram_matrix, hole_total_variation
from pconv.losses.vgg import (
    CONVENTIONS,
    InputConvention,
    VGG16Features,
    VGGWeightsError,
    load_vgg16_features,
)

__all__ = [
    "CONVENTIONS",
    "InpaintingLoss",
    "InputConvention",
    "LossWeights",
    "VGG16Features",
    "VGGWeightsError",
    "gram_matrix",
    "hole_total_variation",
    "load_vgg16_features",
]
