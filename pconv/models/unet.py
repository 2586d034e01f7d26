"""The PConv U-Net of Liu et al. (ECCV 2018) and narrower presets.

Every convolution is a :class:`~pconv.layers.PartialConv2d`. Encoder level ``i``
halves the resolution (ReLU, batch norm on all levels but the first); each decoder
step upsamples ×2 (nearest), concatenates the matching encoder features and masks,
and applies a 3×3 partial convolution (batch norm, LeakyReLU 0.2). The last step
concatenates the input image and its mask and outputs 3 channels with no
normalisation or activation. Convolutions followed by batch norm have no bias
(batch norm's shift replaces it).

Two preset settings serve super-resolution as inpainting (the ``superres`` preset):
``strides`` of 1 keep a level at the resolution of the one above (full-resolution
features; the decoder then does not upsample there), and ``base="cubic"`` makes the
network predict a correction to the bicubic interpolation of the canvas's known pixels
(:mod:`pconv.models.interpolation`) instead of the colours themselves; its last layer
starts at zero, so an untrained network gives the interpolation.

The masks of every layer depend on the input mask alone: :meth:`PConvUNet.mask_pyramid`
computes them once per forward pass (fp32, integer counts). Each block zeroes its
output in the holes as it makes it, so no layer masks its input again and a skip
connection concatenates features that are already masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.functional import pad_to_multiple
from pconv.layers import MaskUpdate, PartialConv2d
from pconv.models.interpolation import interpolate_known_grid

__all__ = ["BASES", "UPSAMPLINGS", "PConvUNet", "UNetConfig", "get_preset", "list_presets", "register_preset"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a PConv U-Net.

    Attributes:
        widths: output channels of encoder levels 1..L (the decoder mirrors them).
        kernel_sizes: encoder kernel sizes, one per level (decoder kernels are 3).
        depth: default number of levels used (at most ``len(widths)``).
        strides: each encoder level's stride, 2 (the paper's: half the resolution) or 1;
            None = all 2.
        base: what the output adds to: ``"none"`` (the paper's: the network predicts
            the colours) or ``"cubic"`` (the bicubic interpolation of a super-resolution
            canvas's known pixels, :func:`~pconv.models.interpolation.interpolate_known_grid`).
        upsampling: how the decoder enlarges features, ``"nearest"`` (the paper's) or
            ``"bilinear"``; masks are always enlarged by nearest neighbour, so bilinear
            features next to a hole of the level below blend in its zeros.
    """

    widths: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    depth: int
    strides: tuple[int, ...] | None = None
    base: str = "none"
    upsampling: str = "nearest"

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.kernel_sizes):
            raise ValueError("widths and kernel_sizes must have one entry per level")
        if not 1 <= self.depth <= len(self.widths):
            raise ValueError(f"depth must be in 1..{len(self.widths)}, got {self.depth}")
        object.__setattr__(self, "strides", tuple(self.strides or (2,) * len(self.widths)))
        if len(self.strides) != len(self.widths) or not set(self.strides) <= {1, 2}:
            raise ValueError(f"strides must be 1 or 2, one per level, got {self.strides}")
        if self.base not in BASES:
            raise ValueError(f"base must be one of {', '.join(BASES)}, got {self.base!r}")
        if self.upsampling not in UPSAMPLINGS:
            raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, got {self.upsampling!r}")


#: What a network's output adds to (:attr:`UNetConfig.base`).
BASES = ("none", "cubic")
#: How a decoder enlarges features (:attr:`UNetConfig.upsampling`).
UPSAMPLINGS = ("nearest", "bilinear")
_PAPER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)
_PRESETS: dict[str, UNetConfig] = {}


def register_preset(name: str, config: UNetConfig) -> None:
    """Make ``config`` available as ``PConvUNet(preset=name)``; names are unique."""
    if name in _PRESETS:
        raise ValueError(f"preset {name!r} is already registered")
    _PRESETS[name] = config


def get_preset(name: str) -> UNetConfig:
    """The :class:`UNetConfig` registered as ``name``."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(list_presets())}") from None


def list_presets() -> list[str]:
    """Names of the registered presets, in registration order."""
    return list(_PRESETS)


# The paper's network: 8 levels for 512×512 (use depth=7 for 256×256), ~32.86 M parameters.
register_preset("paper", UNetConfig((64, 128, 256, 512, 512, 512, 512, 512), _PAPER_KERNELS, depth=8))
# Half the paper's widths: ~8.2 M parameters, a quarter of the compute.
register_preset("small", UNetConfig((32, 64, 128, 256, 256, 256, 256, 256), _PAPER_KERNELS, depth=8))
# A quarter of the paper's widths: ~2.1 M parameters, for CPUs and phones.
register_preset("mini", UNetConfig((16, 32, 64, 128, 128, 128, 128, 128), _PAPER_KERNELS, depth=8))
# `mini` with bilinear upsampling in the decoder: the same weights, without the grid that
# nearest-neighbour upsampling prints on fills of 2 and 4 px (MODEL_CARD.md, round 3).
register_preset(
    "mini-bilinear",
    UNetConfig((16, 32, 64, 128, 128, 128, 128, 128), _PAPER_KERNELS, depth=8, upsampling="bilinear"),
)
# For tests and smoke runs: trains in seconds.
register_preset("tiny", UNetConfig((8, 16, 16, 16, 16), (7, 5, 5, 3, 3), depth=5))
# Super-resolution: a correction to bicubic interpolation, first level at full resolution
# (16 wide: at 32, a 512² → 1024² upscale took 2.1 s on 2 CPU cores instead of 1.3).
register_preset(
    "superres", UNetConfig((16, 32, 64, 64), (5, 3, 3, 3), depth=3, strides=(1, 2, 2, 2), base="cubic")
)


class PConvBlock(nn.Module):
    """Partial convolution, optional batch norm, optional activation.

    ``forward(x, update)`` takes features that are zero in the holes and the layer's
    :class:`~pconv.layers.MaskUpdate`, and returns features that are zero where
    ``update.mask`` is 0 (batch norm's shift is masked out again, in place).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        batch_norm: bool = True,
        activation: nn.Module | None = None,
        mask_groups: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            bias=not batch_norm,
            mask_groups=mask_groups,
        )
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor, update: MaskUpdate) -> Tensor:
        x = self.conv.forward_masked(x, update)
        if isinstance(self.bn, nn.BatchNorm2d):
            x = self.bn(x).mul_(update.mask)  # act(y)·m = act(y·m) for ReLU and LeakyReLU
        return self.act(x)


class PConvUNet(nn.Module):
    """U-Net of partial convolutions for inpainting.

    Args:
        preset: a name from :func:`list_presets` (``"paper"`` is the paper's network).
        depth: number of levels; defaults to the preset's (``paper``: 8 for 512²
            training, 7 for 256²).
        in_channels: image channels (3 for RGB).

    ``forward(image, mask)`` takes ``image`` ``(N, C, H, W)`` in [0, 1] (values in
    holes are ignored) and ``mask`` ``(N, 1, H, W)``, 1 = known, 0 = hole, of any
    H and W: both are padded with hole to a multiple of :attr:`multiple` and the result
    is cropped back. It returns ``(output, output_mask)``, ``(N, C, H, W)`` and
    ``(N, 1, H, W)``. ``output`` is the raw prediction everywhere; combine it with
    the input using :func:`pconv.composite`.
    """

    def __init__(self, preset: str = "paper", depth: int | None = None, *, in_channels: int = 3) -> None:
        super().__init__()
        config = get_preset(preset)
        depth = config.depth if depth is None else depth
        if not 1 <= depth <= len(config.widths):
            raise ValueError(f"preset {preset!r} supports depth 1..{len(config.widths)}, got {depth}")
        self.preset, self.depth, self.in_channels = preset, depth, in_channels
        self.strides, self.base, self.upsampling = config.strides[:depth], config.base, config.upsampling
        widths = config.widths[:depth]
        channels = (in_channels, *widths)  # channels[i]: features entering level i + 1

        self.encoder = nn.ModuleList(
            PConvBlock(
                channels[i],
                channels[i + 1],
                config.kernel_sizes[i],
                stride=self.strides[i],
                batch_norm=i > 0,
                activation=nn.ReLU(inplace=True),
            )
            for i in range(depth)
        )
        # decoder[j] rebuilds level depth-1-j from level depth-j and its skip.
        self.decoder = nn.ModuleList(
            PConvBlock(
                channels[i + 1] + channels[i],
                channels[i],
                3,
                batch_norm=i > 0,
                activation=nn.LeakyReLU(0.2, inplace=True) if i > 0 else None,
                mask_groups=(channels[i + 1], channels[i]),
            )
            for i in reversed(range(depth))
        )
        if self.base != "none":  # a new network adds nothing: it starts as its base
            nn.init.zeros_(self.decoder[-1].conv.weight)
            nn.init.zeros_(self.decoder[-1].conv.bias)
        self._encoder_bn_frozen = False

    @property
    def config(self) -> dict:
        """Keyword arguments that rebuild this architecture: ``PConvUNet(**model.config)``."""
        return {"preset": self.preset, "depth": self.depth, "in_channels": self.in_channels}

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        self._check_inputs(image, mask)
        height, width = image.shape[-2:]
        # The base is read from the canvas as given: padding would change its density.
        base = interpolate_known_grid(image, mask) if self.base == "cubic" else None
        image, mask, (left, _, top, _) = pad_to_multiple(image, mask.to(image.dtype), self.multiple)
        output, output_mask = self.forward_aligned(image, mask)
        crop = (..., slice(top, top + height), slice(left, left + width))
        output = output[crop] if base is None else output[crop] + base
        return output, output_mask[crop]

    @property
    def multiple(self) -> int:
        """The product of the levels' strides (``2**depth`` for the paper's network):
        :meth:`forward_aligned` needs sides that are multiples of it."""
        return math.prod(self.strides)

    def forward_aligned(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` without the padding (and without the base, which :meth:`forward`
        adds), for sides that are multiples of :attr:`multiple`.

        This is what ``pconv export`` exports; ``image`` ``(N, C, H, W)`` and ``mask``
        ``(N, 1, H, W)`` of the same dtype, 1 = known.
        """
        encoder_updates, decoder_updates = self.mask_pyramid(mask)
        x = image * mask
        skips = [x]
        for block, update in zip(self.encoder, encoder_updates, strict=True):
            x = block(x, update)
            skips.append(x)
        skips.pop()  # the bottleneck is the decoder's first input, not a skip
        for block, update, stride in zip(self.decoder, decoder_updates, reversed(self.strides), strict=True):
            x = block(torch.cat([_upsampled(x, stride, self.upsampling), skips.pop()], dim=1), update)
        return x, decoder_updates[-1].mask

    def mask_pyramid(self, mask: Tensor) -> tuple[list[MaskUpdate], list[MaskUpdate]]:
        """Every layer's :class:`~pconv.layers.MaskUpdate`, encoder then decoder, in order.

        ``mask`` is ``(N, 1, H, W)``, 1 = known, with sides a multiple of :attr:`multiple`.
        A decoder layer's input mask has two channels: the upsampled mask of the level
        below and the skip connection's mask.
        """
        masks = [mask]
        encoder_updates = []
        for block in self.encoder:
            encoder_updates.append(block.conv.mask_update(masks[-1]))
            masks.append(encoder_updates[-1].mask)
        masks.pop()
        decoder_updates = []
        below = encoder_updates[-1].mask
        for block, stride in zip(self.decoder, reversed(self.strides), strict=True):
            stacked = torch.cat([_upsampled(below, stride, "nearest"), masks.pop()], dim=1)
            decoder_updates.append(block.conv.mask_update(stacked))
            below = decoder_updates[-1].mask
        return encoder_updates, decoder_updates

    def _check_inputs(self, image: Tensor, mask: Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"image must be (N, {self.in_channels}, H, W), got {tuple(image.shape)}")
        expected = (image.shape[0], 1, *image.shape[2:])
        if tuple(mask.shape) != expected:
            raise ValueError(
                f"mask must be (N, 1, H, W) = {expected} to match the image, got {tuple(mask.shape)}"
            )

    def freeze_encoder_bn(self, frozen: bool = True) -> PConvUNet:
        """Freeze (or unfreeze) the encoder's batch norm for the second training stage.

        While frozen, encoder batch-norm layers stay in eval mode even after
        ``model.train()`` (running statistics are used and not updated) and their
        affine parameters do not require gradients. Decoder batch norm still trains.
        """
        self._encoder_bn_frozen = frozen
        for bn in self._encoder_batch_norms():
            bn.requires_grad_(not frozen)
        return self.train(self.training)

    @property
    def encoder_bn_frozen(self) -> bool:
        """Whether :meth:`freeze_encoder_bn` is in effect."""
        return self._encoder_bn_frozen

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self._encoder_bn_frozen:
            for bn in self._encoder_batch_norms():
                bn.eval()
        return self

    def _encoder_batch_norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.encoder.modules() if isinstance(m, nn.BatchNorm2d)]


def _upsampled(x: Tensor, stride: int, mode: str) -> Tensor:
    """``x`` back at the resolution of the level above one of ``stride`` (``mode``: nearest or bilinear)."""
    if stride == 1:
        return x
    corners = {} if mode == "nearest" else {"align_corners": False}  # nearest takes no align_corners
    return F.interpolate(x, scale_factor=float(stride), mode=mode, **corners)
