"""Partial convolution (Liu et al., ECCV 2018), exact, stateless and about as fast as a convolution.

Mask convention everywhere in this module: ``1`` = known pixel, ``0`` = hole.

Where the time goes, and what this module does about it (``pconv bench`` measures it):

- The window sums ``sum(M)`` need one small convolution of a mask with one channel
  per concatenated input (:func:`mask_update`), never a ``C_out×C_in×k×k``
  convolution of a per-channel mask. They depend on the mask alone, so a network
  computes every layer's :class:`MaskUpdate` once per forward pass, in fp32.
- The convolution has no bias; the ratio and the masked bias are applied in place.
- On CPUs, allocating a large tensor costs about as much as an elementwise pass over
  it (fresh pages). The backward pass therefore masks the input gradient in place and
  the masking of the input writes the compute dtype directly (one allocation, no cast).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["MaskUpdate", "PartialConv2d", "mask_update", "partial_conv2d"]


class MaskUpdate(NamedTuple):
    """What a partial convolution needs from its input mask, both ``(N, 1, H', W')``.

    ``ratio`` is ``C_in·kh·kw / sum(M)`` where the window saw a known element and
    exactly 0 elsewhere; ``mask`` (the layer's output mask) is 1 where ``sum(M) > 0``.
    Both are float32 (float64 for a float64 mask).
    """

    ratio: Tensor
    mask: Tensor


def mask_update(
    mask: Tensor,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    group_sizes: Sequence[int],
) -> MaskUpdate:
    """Window ratio and output mask of a partial convolution, from its input mask alone.

    Args:
        mask: ``(N, G, H, W)`` binary mask, 1 = known. Mask channel ``g`` covers
            ``group_sizes[g]`` input channels, so ``sum(group_sizes)`` is ``C_in``.
        kernel_size, stride, padding, dilation: the convolution's geometry.
        group_sizes: number of input channels behind each mask channel.

    Zero padding counts as hole. The counts are integers, computed with autocast
    disabled and without gradient, and nothing is divided by an epsilon, so fp16/bf16
    code is safe.
    """
    dtype = torch.promote_types(mask.dtype, torch.float32)
    with torch.no_grad(), torch.autocast(mask.device.type, enabled=False):
        mask = mask.to(dtype)
        # A box filter weighted by group size: count = sum(M) over the C_in·kh·kw window.
        if len(set(group_sizes)) == 1:
            box = mask.new_full((1, len(group_sizes), *kernel_size), group_sizes[0])
        else:
            box = torch.cat([mask.new_full((1, 1, *kernel_size), size) for size in group_sizes], dim=1)
        count = F.conv2d(mask, box, None, stride, padding, dilation)  # (N, 1, H', W')
        new_mask = (count > 0).to(dtype)
        window_size = sum(group_sizes) * kernel_size[0] * kernel_size[1]
        # A true division (exactly 1 where all is known), then exactly 0 where none is.
        ratio = torch.full_like(count, window_size).div_(count.clamp_(min=1)).mul_(new_mask)
        return MaskUpdate(ratio, new_mask)


def partial_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    update: MaskUpdate,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    mask: Tensor | None = None,
    group_sizes: Sequence[int] = (),
) -> Tensor:
    """``W·(X⊙M)·ratio + b·new_mask``: the partial convolution, given its mask update.

    Args:
        x: ``(N, C_in, H, W)`` features.
        weight, bias: as in ``F.conv2d`` (``groups=1``).
        update: :func:`mask_update` of the layer's input mask.
        mask: ``(N, G, H, W)`` input mask with ``group_sizes`` as in :func:`mask_update`,
            or ``None`` when ``x`` is already zero in the holes (a network that masks
            its activations as it makes them saves the multiplication).

    Under autocast the convolution runs in the autocast dtype (the mask path stays
    fp32). With gradients enabled the backward pass is hand-written
    (:class:`_PartialConv2dFunction`); without, the same forward runs as plain ops,
    which is what tracing and export see.
    """
    group_sizes = tuple(group_sizes)
    geometry = (stride, padding, dilation)
    inputs_need_grad = x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    if torch.is_grad_enabled() and inputs_need_grad:
        return _PartialConv2dFunction.apply(
            x, weight, bias, update.ratio, update.mask, mask, group_sizes, geometry
        )
    return _forward(x, weight, bias, update, mask, group_sizes, geometry)[0]


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the convolution runs in: autocast's where it applies, else ``x``'s."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type) and x.dtype != torch.float64:
        return torch.get_autocast_dtype(device_type)
    return x.dtype


def _forward(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    update: MaskUpdate,
    mask: Tensor | None,
    group_sizes: tuple[int, ...],
    geometry: tuple,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(out, masked_x, weight)``, the last two in the compute dtype (saved for backward)."""
    dtype = _compute_dtype(x)
    if mask is None:
        masked_x = x.to(dtype)
    else:  # one allocation, written in the compute dtype
        masked_x = _mask_into(torch.empty_like(x, dtype=dtype), x, mask, group_sizes)
    weight = weight.to(dtype)
    with torch.autocast(x.device.type, enabled=False):
        out = F.conv2d(masked_x, weight, None, *geometry)
        out.mul_(update.ratio)  # fp32 ratio, in place: out keeps its dtype
        if bias is not None:
            out.addcmul_(bias.view(1, -1, 1, 1), update.mask)  # the bias only where new_mask is 1
    return out, masked_x, weight


def _mask_into(out: Tensor, x: Tensor, mask: Tensor, group_sizes: tuple[int, ...]) -> Tensor:
    """Write ``X ⊙ M`` into ``out`` (which may be ``x`` itself) and return it.

    Each mask channel is broadcast over its group of input channels.
    """
    if mask.shape[1] in (1, x.shape[1]):
        return torch.mul(x, mask, out=out)
    for part, part_out, part_mask in zip(
        x.split(group_sizes, dim=1), out.split(group_sizes, dim=1), mask.split(1, dim=1), strict=True
    ):
        torch.mul(part, part_mask, out=part_out)
    return out


class _PartialConv2dFunction(torch.autograd.Function):
    """Partial convolution with a backward pass that allocates little beyond a plain conv's.

    Saves the masked input and the weight in the compute dtype (what a plain
    convolution saves) plus the fp32 ratio and masks. The backward allocates one
    output-sized tensor (the gradient scaled by the ratio) beyond what a plain
    convolution's does; the input gradient is masked in place.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, ratio, new_mask, mask, group_sizes, geometry):  # type: ignore[override]
        out, masked_x, cast_weight = _forward(
            x, weight, bias, MaskUpdate(ratio, new_mask), mask, group_sizes, geometry
        )
        ctx.save_for_backward(masked_x, cast_weight, ratio, new_mask, mask)
        ctx.group_sizes, ctx.geometry = group_sizes, geometry
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        with torch.autocast(grad_out.device.type, enabled=False):
            grads = _backward(ctx, grad_out, need_x, need_weight, need_bias)
        return *grads, None, None, None, None, None


def _backward(ctx, grad_out: Tensor, need_x: bool, need_weight: bool, need_bias: bool) -> tuple:
    """``(grad_x, grad_weight, grad_bias)`` of :class:`_PartialConv2dFunction`."""
    masked_x, weight, ratio, new_mask, mask = ctx.saved_tensors
    x_dtype, weight_dtype, bias_dtype = ctx.dtypes
    grad_x = grad_weight = grad_bias = None
    if need_bias:
        grad_bias = torch.einsum("nchw,nhw->c", grad_out, new_mask[:, 0].to(grad_out.dtype)).to(bias_dtype)
    if need_x or need_weight:
        grad_scaled = torch.mul(grad_out, ratio, out=torch.empty_like(grad_out, dtype=masked_x.dtype))
        stride, padding, dilation = ctx.geometry
        grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad_scaled, masked_x, weight, None, stride, padding, dilation, False, [0, 0], 1,
            [need_x, need_weight, False],
        )  # fmt: skip
    if grad_x is not None:
        if mask is not None:
            grad_x = _mask_into(grad_x, grad_x, mask, ctx.group_sizes)
        grad_x = grad_x.to(x_dtype)
    if grad_weight is not None:
        grad_weight = grad_weight.to(weight_dtype)
    return grad_x, grad_weight, grad_bias


class PartialConv2d(nn.Conv2d):
    """2-D partial convolution: ``nn.Conv2d`` restricted to the known pixels.

    Per window, with ``X`` the input, ``M`` its mask (1 = known, 0 = hole)::

        out = W·(X⊙M) · sum(1)/sum(M) + b    where sum(M) > 0
        out = 0                              elsewhere (no bias in holes)

    ``sum(1)`` is the full window, ``C_in·kh·kw``; zero padding counts as hole.
    The output never depends on the values inside holes.

    Parameters and initialisation are those of ``nn.Conv2d`` (``weight`` is
    ``(C_out, C_in, kh, kw)``, ``bias`` is ``(C_out,)`` or ``None``), so state dicts
    and ``nn.init`` work unchanged. Only ``groups=1`` and zero padding are supported;
    ``padding="same"`` needs an odd (dilated) kernel.

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

    A network that knows its masks in advance calls :meth:`mask_update` for every
    layer once and then :meth:`forward_masked` with inputs already zero in holes.
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
        if isinstance(self.padding, str):
            self.padding = _explicit_padding(self.padding, self.kernel_size, self.dilation)
        if mask_groups is not None:
            mask_groups = tuple(int(c) for c in mask_groups)
            if sum(mask_groups) != in_channels or min(mask_groups) < 1:
                raise ValueError(
                    f"mask_groups {mask_groups} must be positive and sum to in_channels={in_channels}"
                )
        self.mask_groups = mask_groups

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Return ``(out, new_mask)``; see the class docstring for shapes."""
        self._check_shapes(x, mask)
        group_sizes = self._group_sizes(mask)
        update = mask_update(mask, self.kernel_size, self.stride, self.padding, self.dilation, group_sizes)
        out = partial_conv2d(
            x, self.weight, self.bias, update, self.stride, self.padding, self.dilation, mask, group_sizes
        )
        return out, update.mask

    def mask_update(self, mask: Tensor) -> MaskUpdate:
        """This layer's :class:`MaskUpdate` for an input mask (see ``forward`` for its shapes)."""
        return mask_update(
            mask, self.kernel_size, self.stride, self.padding, self.dilation, self._group_sizes(mask)
        )

    def forward_masked(self, x: Tensor, update: MaskUpdate) -> Tensor:
        """The output for an ``x`` that is already zero in the holes, given :meth:`mask_update`."""
        return partial_conv2d(x, self.weight, self.bias, update, self.stride, self.padding, self.dilation)

    def _group_sizes(self, mask: Tensor) -> tuple[int, ...]:
        """Input channels behind each mask channel."""
        if mask.dim() != 4:
            raise ValueError(f"expected a 4-D mask (N, C, H, W), got {tuple(mask.shape)}")
        channels = mask.shape[1]
        if channels == 1:
            return (self.in_channels,)
        if channels == self.in_channels:
            return (1,) * channels
        if self.mask_groups is not None and channels == len(self.mask_groups):
            return self.mask_groups
        allowed = sorted({1, self.in_channels, len(self.mask_groups or ())} - {0})
        raise ValueError(f"mask has {channels} channels; this layer accepts {allowed}")

    def _check_shapes(self, x: Tensor, mask: Tensor) -> None:
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

    def extra_repr(self) -> str:
        groups = f", mask_groups={self.mask_groups}" if self.mask_groups is not None else ""
        return super().extra_repr() + groups


def _explicit_padding(
    padding: str, kernel_size: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    """``"valid"`` or ``"same"`` as per-side padding (the mask update needs numbers)."""
    if padding == "valid":
        return (0, 0)
    spans = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
    if any(span % 2 for span in spans):
        raise ValueError(
            f"padding='same' with kernel {kernel_size} and dilation {dilation} pads unevenly; "
            "give the padding as numbers"
        )
    return (spans[0] // 2, spans[1] // 2)
