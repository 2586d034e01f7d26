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

Not in the paper, and weighted 0 by default: ``border = mean|B·(I_out − I_gt)|`` with
``B`` the hole pixels at most :data:`BORDER_WIDTH` pixels from a known one
(:func:`border_band`), an extra weight on the fill where it must meet the known
pixels (MODEL_CARD.md, round 3: the seam along hole borders).

The paper computes ``Ψ`` on the whole image. With ``vgg_crop`` > 0, the perceptual and
style terms are computed on one square window per image centred on a random hole pixel
(:func:`hole_windows`), the same window in ``I_out``, ``I_comp`` and ``I_gt``: that is
where the two terms matter, as ``I_comp = I_gt`` elsewhere, and it cuts VGG's cost by
the ratio of the areas. Both terms are means, so their scale does not depend on the
window's size and the same weights apply.

Every term is computed in float32, whatever autocast does to the network and to VGG.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.losses.vgg import VGG16Features

__all__ = [
    "BORDER_WIDTH",
    "PAPER_PERCEPTUAL_WEIGHT",
    "PAPER_STYLE_WEIGHT",
    "InpaintingLoss",
    "LossWeights",
    "border_band",
    "gram_matrix",
    "hole_total_variation",
    "hole_windows",
]

#: The paper's perceptual and style weights, for VGG features of torchvision-normalised input.
PAPER_PERCEPTUAL_WEIGHT, PAPER_STYLE_WEIGHT = 0.05, 120.0

#: Width in pixels of the band inside the holes that the ``border`` term weighs.
BORDER_WIDTH = 3


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; the defaults are the paper's.

    ``perceptual`` and ``style`` left at ``None`` mean the paper's 0.05 and 120 in the
    VGG weights' input convention (:meth:`for_vgg`): divided by the convention's
    :attr:`~pconv.losses.InputConvention.feature_scale` and its square, about 8.7e-4
    and 0.036 for the Caffe weights, whose activations are about 58 times larger.
    ``border`` weighs the extra term on the band inside the holes along their border
    (not in the paper; 0 leaves it out).
    """

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float | None = None
    style: float | None = None
    tv: float = 0.1
    border: float = 0.0

    @property
    def uses_vgg(self) -> bool:
        """Whether the perceptual or the style term weighs anything (VGG runs only then)."""
        return self.perceptual != 0 or self.style != 0

    def for_vgg(self, feature_scale: float) -> LossWeights:
        """These weights with ``perceptual``/``style`` of ``None`` set to the paper's for
        VGG activations ``feature_scale`` times torchvision's."""
        return replace(
            self,
            perceptual=PAPER_PERCEPTUAL_WEIGHT / feature_scale
            if self.perceptual is None
            else self.perceptual,
            style=PAPER_STYLE_WEIGHT / feature_scale**2 if self.style is None else self.style,
        )


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


def border_band(mask: Tensor, width: int = BORDER_WIDTH) -> Tensor:
    """The hole pixels at most ``width`` pixels (in the max norm) from a known pixel:
    ``(N, 1, H, W)`` float, 1 in the band, from ``mask`` ``(N, 1, H, W)`` with 1 = known."""
    known = mask.float()
    near_known = F.max_pool2d(known, kernel_size=2 * width + 1, stride=1, padding=width)
    return near_known * (1 - known)


def hole_windows(mask: Tensor, size: int, generator: torch.Generator | None = None) -> Tensor:
    """The top-left corners ``(N, 2)`` (row, column) of one ``size``² window per image,
    centred on a hole pixel drawn uniformly with ``generator`` (default: torch's global
    one; on ``mask``'s device), moved inside the image where the centre is near a border.

    ``mask`` is ``(N, 1, H, W)`` with 1 = known; an image without a hole gets a window
    centred on any pixel.
    """
    height, width = mask.shape[-2:]
    hole = (mask[:, 0] < 0.5).flatten(1).float()  # (N, H·W)
    hole[hole.sum(1) == 0] = 1  # no hole: any pixel
    centres = torch.multinomial(hole, 1, generator=generator).squeeze(1)
    rows = (centres // width - size // 2).clamp(0, height - size)
    columns = (centres % width - size // 2).clamp(0, width - size)
    return torch.stack([rows, columns], dim=1)


def _crop_windows(images: list[Tensor], corners: Tensor, size: int) -> list[Tensor]:
    """Each ``(N, C, H, W)`` image batch cut to ``(N, C, size, size)`` at ``corners``."""
    corners = corners.tolist()
    return [
        torch.stack([image[i, :, r : r + size, c : c + size] for i, (r, c) in enumerate(corners)])
        for image in images
    ]


def _feature_l1(predictions: list[Tensor], targets: list[Tensor]) -> Tensor:
    return sum(F.l1_loss(p.float(), t.float()) for p, t in zip(predictions, targets, strict=True))


class InpaintingLoss(nn.Module):
    """The paper's loss, every term returned separately.

    Args:
        vgg: the feature extractor for the perceptual and style terms (``None`` when
            both their weights are 0).
        weights: term weights (default: the paper's 1, 6, 0.05, 120, 0.1, with the
            perceptual and style weights in ``vgg``'s input convention, see
            :class:`LossWeights`).
        vgg_crop: side of the window around a hole pixel on which the perceptual and
            style terms are computed (:func:`hole_windows`), or 0 (or a size not
            smaller than the image) for the paper's whole image.

    ``forward(output, target, mask, generator=None)`` takes the network output and the
    ground truth, RGB ``(N, 3, H, W)`` in [0, 1], ``mask`` ``(N, 1, H, W)`` with 1 =
    known, and the generator that draws the windows (default: torch's global one), and
    returns float32 scalars ``valid``, ``hole``, ``perceptual``, ``style``,
    ``tv``, ``border`` (unweighted) and ``total`` (weighted sum). With both the perceptual
    and the style weight 0, VGG does not run and those two terms are left out of the
    result; so is ``border`` when its weight is 0.
    """

    def __init__(
        self, vgg: VGG16Features | None, weights: LossWeights | None = None, vgg_crop: int = 0
    ) -> None:
        super().__init__()
        weights = weights or LossWeights()
        if vgg is None and weights.uses_vgg:
            raise ValueError("the perceptual and style terms need a VGG16Features (or weights 0 for both)")
        if vgg_crop != 0 and vgg_crop < 8:
            raise ValueError(
                f"vgg_crop must be 0 (whole image) or at least 8 (VGG pools three times), got {vgg_crop}"
            )
        self.vgg, self.vgg_crop = vgg, vgg_crop
        self.weights = weights.for_vgg(vgg.convention.feature_scale if vgg is not None else 1.0)

    def forward(
        self, output: Tensor, target: Tensor, mask: Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        output, target, mask = output.float(), target.float(), mask.float()
        composite = mask * target + (1 - mask) * output
        terms = {
            "valid": F.l1_loss(mask * output, mask * target),
            "hole": F.l1_loss((1 - mask) * output, (1 - mask) * target),
        }
        if self.weights.uses_vgg:
            terms |= self._feature_terms(output, target, composite, mask, generator)
        terms["tv"] = hole_total_variation(composite, mask)
        if self.weights.border:
            band = border_band(mask)
            terms["border"] = F.l1_loss(band * output, band * target)
        weights = asdict(self.weights)
        terms["total"] = sum(weights[name] * value for name, value in terms.items())
        return terms

    def _feature_terms(
        self,
        output: Tensor,
        target: Tensor,
        composite: Tensor,
        mask: Tensor,
        generator: torch.Generator | None,
    ) -> dict[str, Tensor]:
        """The perceptual and style terms (unweighted), on the whole images or on windows."""
        size = self.vgg_crop
        if 0 < size < min(output.shape[-2:]):
            output, target, composite = _crop_windows(
                [output, target, composite], hole_windows(mask, size, generator), size
            )
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
