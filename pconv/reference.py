"""Partial convolution and the PConv U-Net as the popular implementations compute them.

These are the comparisons of ``pconv bench`` (the ``reference`` implementation, and the
``conv`` floor of :func:`plain_unet`) and the oracles of the tests, run in float64:
:class:`pconv.PartialConv2d` and :class:`pconv.PConvUNet` must give the same results
as :func:`reference_partial_conv` and :func:`reference_unet` up to their epsilon.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.layers import PartialConv2d
from pconv.models import PConvUNet

__all__ = ["plain_unet", "reference_partial_conv", "reference_unet"]


def reference_partial_conv(
    x: Tensor, mask: Tensor, conv: nn.Conv2d, ones: Tensor | None = None, eps: float = 1e-8
) -> tuple[Tensor, Tensor]:
    """Partial convolution as the popular implementations write it (what pconv replaces).

    Args:
        x: ``(N, C_in, H, W)`` features.
        mask: ``(N, C_in, H, W)``, one channel per feature channel, 1 = known.
        conv: the convolution whose weights, bias and geometry are used.
        ones: ``torch.ones_like(conv.weight)``, the mask-counting kernel (made if None).
        eps: added to the counts before dividing, as those implementations do.

    Returns ``(out, new_mask)`` with ``new_mask`` ``(N, C_out, H', W')``, one channel
    per output channel: the mask is convolved with a full ``C_out×C_in×kh×kw`` kernel
    of ones, the ratio divides by ``count + eps``, and the bias is subtracted and
    added back. Equal to :class:`~pconv.PartialConv2d` up to the epsilon.
    """
    if ones is None:
        ones = torch.ones_like(conv.weight, requires_grad=False)
    with torch.no_grad():
        count = F.conv2d(mask, ones, None, conv.stride, conv.padding, conv.dilation)
        new_mask = count.clamp(0, 1)
        ratio = ones[0].numel() / (count + eps) * new_mask
    raw = F.conv2d(x * mask, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)
    if conv.bias is None:
        return raw * ratio, new_mask
    bias = conv.bias.view(1, -1, 1, 1)
    return ((raw - bias) * ratio + bias) * new_mask, new_mask


def plain_unet(model: PConvUNet, image: Tensor) -> Tensor:
    """``model`` with every partial convolution run as a plain convolution (no masks)."""
    return _unet_with(model, _plain_layer, image, None)


def reference_unet(
    model: PConvUNet,
    image: Tensor,
    mask: Tensor,
    *,
    ones: dict[PartialConv2d, Tensor] | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """``model``'s output computed the popular way (:func:`reference_partial_conv` in
    every layer, masks with one channel per feature channel, concatenated at each skip).

    ``image`` ``(N, 3, H, W)`` and ``mask`` ``(N, 1, H, W)`` (1 = known) need sides
    that are a multiple of ``2**model.depth``. ``ones`` maps each layer to its kernel
    of ones (made on every call if None).
    """

    def layer(conv: PartialConv2d, x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        return reference_partial_conv(x, m, conv, None if ones is None else ones[conv], eps)

    return _unet_with(model, layer, image, mask.expand_as(image))


def _plain_layer(conv: PartialConv2d, x: Tensor, mask: None) -> tuple[Tensor, None]:
    return conv._conv_forward(x, conv.weight, conv.bias), None


def _unet_with(model: PConvUNet, layer: Callable, image: Tensor, mask: Tensor | None) -> Tensor:
    """``model``'s forward with each partial convolution replaced by ``layer(conv, x, mask)``.

    The masks (unless ``None``) are concatenated along with the features at each skip
    connection, as the popular implementations do; ``image`` needs no padding (sides a
    multiple of ``2**depth``).
    """
    skips = [(image, mask)]
    x, m = image, mask
    for block in model.encoder:
        x, m = layer(block.conv, x, m)
        x = block.act(block.bn(x))
        skips.append((x, m))
    skips.pop()
    for block in model.decoder:
        skip_x, skip_m = skips.pop()
        x = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip_x], dim=1)
        if m is not None:
            m = torch.cat([F.interpolate(m, scale_factor=2.0, mode="nearest"), skip_m], dim=1)
        x, m = layer(block.conv, x, m)
        x = block.act(block.bn(x))
    return x
