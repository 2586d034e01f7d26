"""Partial convolution (Liu et al., ECCV 2018), exact and stateless.

Mask convention everywhere in this module: ``1`` = known pixel, ``0`` = hole.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PartialConv2d", "mask_ratio"]


def mask_ratio(
    mask: Tensor,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int] | str,
    dilation: tuple[int, int],
    group_sizes: Sequence[int],
) -> tuple[Tensor, Tensor]:
    """Window ratio ``sum(1) / sum(M)`` and updated mask of a partial convolution.

    Args:
        mask: ``(N, G, H, W)`` binary mask, 1 = known. Mask channel ``g`` covers
            ``group_sizes[g]`` input channels, so ``sum(group_sizes)`` is ``C_in``.
        kernel_size, stride, padding, dilation: the convolution's geometry.
        group_sizes: number of input channels behind each mask channel.

    Returns:
        ``(ratio, new_mask)``, both ``(N, 1, H', W')`` in float32 (float64 for a
        float64 mask). ``ratio`` is ``C_in·kh·kw / sum(M)`` where the window saw a
        known element and exactly 0 elsewhere; ``new_mask`` is 1 where ``sum(M) > 0``.
        Zero padding counts as hole. The counts are integers, computed with autocast
        disabled, and nothing is divided by an epsilon, so fp16/bf16 code is safe.
    """
    dtype = torch.promote_types(mask.dtype, torch.float32)
    with torch.autocast(mask.device.type, enabled=False):
        # A box filter weighted by group size: count = sum(M) over the C_in·kh·kw window.
        box = mask.new_tensor(group_sizes, dtype=dtype).view(1, -1, 1, 1)
        box = box.expand(1, len(group_sizes), *kernel_size)  # (1, G, kh, kw)
        count = F.conv2d(mask.to(dtype), box, None, stride, padding, dilation)  # (N, 1, H', W')
        new_mask = (count > 0).to(dtype)
        window_size = count.new_tensor(sum(group_sizes) * kernel_size[0] * kernel_size[1])
        ratio = window_size / count.clamp(min=1)  # a true division: exactly 1 where all is known
        return ratio * new_mask, new_mask


class PartialConv2d(nn.Conv2d):
    """2-D partial convolution: ``nn.Conv2d`` restricted to the known pixels.

    Per window, with ``X`` the input, ``M`` its mask (1 = known, 0 = hole)::

        out = W·(X⊙M) · sum(1)/sum(M) + b    where sum(M) > 0
        out = 0                              elsewhere (no bias in holes)

    ``sum(1)`` is the full window, ``C_in·kh·kw``; zero padding counts as hole.
    The output never depends on the values inside holes.

    Parameters and initialisation are those of ``nn.Conv2d`` (``weight`` is
    ``(C_out, C_in, kh, kw)``, ``bias`` is ``(C_out,)`` or ``None``), so state dicts
    and ``nn.init`` work unchanged. Only ``groups=1`` and zero padding are supported.

    Args:
        mask_groups: optional channel counts of the parts of a concatenated input
            (e.g. ``(512, 256)`` for upsampled features concatenated with a skip
            connection). The layer then also accepts a mask with one channel per
            part, which is exact and much cheaper than a per-channel mask.

    Shapes:
        ``x``: ``(N, C_in, H, W)``. ``mask``: ``(N, 1, H, W)`` (shared by all input
        channels), ``(N, C_in, H, W)`` (one per channel) or ``(N, len(mask_groups),
        H, W)``. Returns ``(out, new_mask)``: ``(N, C_out, H', W')`` and
        ``(N, 1, H', W')``, ``new_mask`` being 1 where the window saw a known element.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        *,
        mask_groups: Sequence[int] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        if mask_groups is not None:
            mask_groups = tuple(int(c) for c in mask_groups)
            if sum(mask_groups) != in_channels or min(mask_groups) < 1:
                raise ValueError(
                    f"mask_groups {mask_groups} must be positive and sum to in_channels={in_channels}"
                )
        self.mask_groups = mask_groups

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Return ``(out, new_mask)``; see the class docstring for shapes."""
        group_sizes = self._group_sizes(x, mask)
        ratio, new_mask = mask_ratio(
            mask, self.kernel_size, self.stride, self.padding, self.dilation, group_sizes
        )
        out = F.conv2d(
            _apply_mask(x, mask, group_sizes), self.weight, None, self.stride, self.padding, self.dilation
        )
        # ratio is fp32 (exactly 0 in holes); multiplying in place keeps out's dtype.
        out = out.mul_(ratio)
        if self.bias is not None:
            out = out.add_(self.bias.view(1, -1, 1, 1) * new_mask.to(out.dtype))
        return out, new_mask

    def _group_sizes(self, x: Tensor, mask: Tensor) -> tuple[int, ...]:
        """Input channels behind each mask channel, after checking the shapes."""
        if x.dim() != 4 or mask.dim() != 4:
            raise ValueError(
                f"expected 4-D x and mask (N, C, H, W), got x {tuple(x.shape)} and mask {tuple(mask.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, the layer expects {self.in_channels}")
        if mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"mask {tuple(mask.shape)} does not match x {tuple(x.shape)} in batch or spatial size"
            )
        channels = mask.shape[1]
        if channels == 1:
            return (self.in_channels,)
        if channels == self.in_channels:
            return (1,) * channels
        if self.mask_groups is not None and channels == len(self.mask_groups):
            return self.mask_groups
        allowed = sorted({1, self.in_channels, len(self.mask_groups or ())} - {0})
        raise ValueError(f"mask has {channels} channels; this layer accepts {allowed}")

    def extra_repr(self) -> str:
        groups = f", mask_groups={self.mask_groups}" if self.mask_groups is not None else ""
        return super().extra_repr() + groups


def _apply_mask(x: Tensor, mask: Tensor, group_sizes: tuple[int, ...]) -> Tensor:
    """``X ⊙ M`` with each mask channel broadcast over its group of input channels."""
    mask = mask.to(x.dtype)
    if len(group_sizes) in (1, x.shape[1]):
        return x * mask
    parts = x.split(group_sizes, dim=1)
    return torch.cat([part * m for part, m in zip(parts, mask.split(1, dim=1), strict=True)], dim=1)
