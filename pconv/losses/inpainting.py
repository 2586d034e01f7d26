"""The paper's inpainting loss (Liu et al. 2018, §3.3; ../SPEC.md §3).

With ``M`` the mask (1 = known, 0 = hole), ``I_comp = M·I_gt + (1 − M)·I_out`` and
``Ψ_p`` the VGG-16 activations after pool1..pool3:

* ``valid = mean|M·(I_out − I_gt)|``, ``hole = mean|(1 − M)·(I_out − I_gt)|``
  (means over every element of the image batch);
* ``perceptual = Σ_p mean|Ψ_p(I_out) − Ψ_p(I_gt)| + mean|Ψ_p(I_comp) − Ψ_p(I_gt)|``;
* ``style``: the same with Gram matrices ``G_p = Ψ_pᵀΨ_p / (C_p·H_p·W_p)``;
* ``tv``: total variation of ``I_comp`` between neighbours that both lie in the hole
  dilated by one pixel, divided by the number of elements of ``I_comp``;
* ``total = 1·valid + 6·hole + 0.05·perceptual + 120·style + 0.1·tv``.

Every term is computed in float32, whatever autocast does to the network and to VGG.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.losses.vgg import VGG16Features

__all__ = ["InpaintingLoss", "LossWeights", "gram_matrix", "hole_total_variation"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; the defaults are the paper's."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0
    tv: float = 0.1

    @property
    def uses_vgg(self) -> bool:
        """Whether the perceptual or the style term weighs anything (VGG runs only then)."""
        return bool(self.perceptual or self.style)


def gram_matrix(features: Tensor) -> Tensor:
    """``(N, C, H, W)`` features → float32 ``(N, C, C)`` Gram matrices divided by ``C·H·W``."""
    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(n, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def hole_total_variation(image: Tensor, mask: Tensor) -> Tensor:
    """Total variation of ``image`` ``(N, C, H, W)`` inside the holes of ``mask`` dilated by one pixel.

    ``mask`` is ``(N, 1, H, W)`` with 1 = known. Absolute differences between
    horizontal and vertical neighbours are summed where both pixels lie in the
    dilated hole, then divided by ``image.numel()``.
    """
    region = F.max_pool2d(
        1 - mask.float(), kernel_size=3, stride=1, padding=1
    )  # (N, 1, H, W), 1 = hole ± 1 px
    image = image.float()
    horizontal = (image[..., :, 1:] - image[..., :, :-1]).abs() * (region[..., :, 1:] * region[..., :, :-1])
    vertical = (image[..., 1:, :] - image[..., :-1, :]).abs() * (region[..., 1:, :] * region[..., :-1, :])
    return (horizontal.sum() + vertical.sum()) / image.numel()


def _feature_l1(predictions: list[Tensor], targets: list[Tensor]) -> Tensor:
    return sum(F.l1_loss(p.float(), t.float()) for p, t in zip(predictions, targets, strict=True))


class InpaintingLoss(nn.Module):
    """The paper's loss, every term returned separately.

    Args:
        vgg: the feature extractor for the perceptual and style terms (``None`` when
            both their weights are 0).
        weights: term weights (default: the paper's 1, 6, 0.05, 120, 0.1).

    ``forward(output, target, mask)`` takes the network output and the ground truth,
    RGB ``(N, 3, H, W)`` in [0, 1], and ``mask`` ``(N, 1, H, W)`` with 1 = known,
    and returns float32 scalars ``valid``, ``hole``, ``perceptual``, ``style``,
    ``tv`` (unweighted) and ``total`` (weighted sum). With both the perceptual and the
    style weight 0, VGG does not run (on a CPU it costs over 90 % of a training step)
    and those two terms are left out of the result.
    """

    def __init__(self, vgg: VGG16Features | None, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.vgg = vgg
        self.weights = weights or LossWeights()
        if vgg is None and self.weights.uses_vgg:
            raise ValueError("the perceptual and style terms need a VGG16Features (or weights 0 for both)")

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        output, target, mask = output.float(), target.float(), mask.float()
        composite = mask * target + (1 - mask) * output
        terms = {
            "valid": F.l1_loss(mask * output, mask * target),
            "hole": F.l1_loss((1 - mask) * output, (1 - mask) * target),
        }
        if self.weights.uses_vgg:
            terms |= self._feature_terms(output, target, composite)
        terms["tv"] = hole_total_variation(composite, mask)
        weights = asdict(self.weights)
        terms["total"] = sum(weights[name] * value for name, value in terms.items())
        return terms

    def _feature_terms(self, output: Tensor, target: Tensor, composite: Tensor) -> dict[str, Tensor]:
        """The perceptual and style terms (unweighted)."""
        with torch.no_grad():
            target_features = self.vgg(target)
        both = self.vgg(torch.cat([output, composite]))
        output_features = [f[: len(output)] for f in both]
        composite_features = [f[len(output) :] for f in both]
        target_grams = [gram_matrix(f) for f in target_features]
        return {
            "perceptual": _feature_l1(output_features, target_features)
            + _feature_l1(composite_features, target_features),
            "style": _feature_l1([gram_matrix(f) for f in output_features], target_grams)
            + _feature_l1([gram_matrix(f) for f in composite_features], target_grams),
        }
