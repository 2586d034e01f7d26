"""The paper's loss and the VGG-16 features it uses."""

from pconv.losses.inpainting import (
    BORDER_WIDTH,
    PAPER_PERCEPTUAL_WEIGHT,
    PAPER_STYLE_WEIGHT,
    InpaintingLoss,
    LossWeights,
    border_band,
    gram_matrix,
    hole_total_variation,
    hole_windows,
)
from pconv.losses.vgg import (
    CONVENTIONS,
    InputConvention,
    VGG16Features,
    VGGWeightsError,
    load_vgg16_features,
)

__all__ = [
    "BORDER_WIDTH",
    "CONVENTIONS",
    "PAPER_PERCEPTUAL_WEIGHT",
    "PAPER_STYLE_WEIGHT",
    "InpaintingLoss",
    "InputConvention",
    "LossWeights",
    "VGG16Features",
    "VGGWeightsError",
    "border_band",
    "gram_matrix",
    "hole_total_variation",
    "hole_windows",
    "load_vgg16_features",
]
