"""pconv's fast partial convolution against the popular approach (per-channel masks, a
kernel of ones), which ``pconv.bench`` keeps as the reference: same outputs, same
gradients, in float64 to 1e-9 and under autocast."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor

from pconv import PartialConv2d
from pconv.bench import random_mask
from pconv.layers import mask_update, partial_conv2d
from pconv.models import PConvUNet
from pconv.reference import reference_partial_conv, reference_unet

TOLERANCE = {"rtol": 1e-9, "atol": 1e-9}
EXACT_EPS = 1e-14  # the reference's epsilon, small enough not to show at 1e-9


def mask_with_a_large_hole(batch: int, size: int, seed: int) -> Tensor:
    """Irregular holes plus a square hole large enough to survive several levels of a U-Net."""
    mask = random_mask(batch, 1, size, torch.device("cpu"), seed=seed)
    mask[..., size // 8 : size // 2 + size // 8, size // 4 : 3 * size // 4] = 0
    return mask


def grads(output: Tensor, inputs: list[Tensor], seed: int = 1) -> list[Tensor]:
    """Gradients of ``sum(output · G)`` for a fixed random ``G``."""
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed), dtype=output.dtype)
    return list(torch.autograd.grad(output, inputs, weights))


# (in_parts, out_channels, kernel, stride, bias): one mask channel per part; two parts
# is a decoder layer after a skip concatenation.
LAYER_CASES = [
    ((3,), 8, 7, 2, True),
    ((6,), 5, 5, 2, False),
    ((4,), 4, 3, 1, False),
    ((6, 4), 5, 3, 1, False),
    ((6, 3), 3, 3, 1, True),
]


@pytest.mark.parametrize(("in_parts", "out_channels", "kernel", "stride", "bias"), LAYER_CASES)
def test_layer_matches_the_reference_approach_in_float64(in_parts, out_channels, kernel, stride, bias):
    gen = torch.Generator().manual_seed(sum(in_parts) + kernel)
    layer = PartialConv2d(
        sum(in_parts), out_channels, kernel, stride, kernel // 2, bias=bias,
        mask_groups=in_parts if len(in_parts) > 1 else None,
    ).double()  # fmt: skip
    if bias:
        torch.nn.init.normal_(layer.bias, generator=gen)
    x = torch.randn(2, sum(in_parts), 24, 20, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.cat(
        [random_mask(2, 1, 24, torch.device("cpu"), seed=10 * i)[..., :20] for i in range(len(in_parts))], 1
    )
    mask = mask.double()
    per_channel = mask.repeat_interleave(torch.tensor(in_parts), dim=1)

    out, new_mask = layer(x, mask)
    ref_out, ref_mask = reference_partial_conv(x, per_channel, layer, eps=EXACT_EPS)
    torch.testing.assert_close(out, ref_out, **TOLERANCE)
    assert torch.equal(new_mask.expand_as(ref_mask), ref_mask)
    leaves = [x, *layer.parameters()]
    for ours, reference in zip(grads(out, leaves), grads(ref_out, leaves), strict=True):
        torch.testing.assert_close(ours, reference, **TOLERANCE)


def test_the_hand_written_backward_and_the_no_grad_forward_agree_bit_for_bit():
    gen = torch.Generator().manual_seed(3)
    layer = PartialConv2d(9, 4, 3, padding=1, mask_groups=(6, 3))
    x = torch.randn(2, 9, 16, 16, generator=gen)
    mask = (torch.rand(2, 2, 16, 16, generator=gen) > 0.5).float()
    with torch.no_grad():
        plain, _ = layer(x, mask)
    tracked, _ = layer(x.requires_grad_(), mask)
    assert tracked.grad_fn is not None
    assert torch.equal(plain, tracked.detach())


@pytest.mark.parametrize("mask_channels", [1, 2, 9])
def test_gradcheck_of_every_mask_layout(mask_channels):
    gen = torch.Generator().manual_seed(mask_channels)
    layer = PartialConv2d(9, 3, 3, 2, 1, mask_groups=(6, 3)).double()
    x = torch.randn(1, 9, 7, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(1, mask_channels, 7, 6, generator=gen) > 0.5).double()

    def output(x, weight, bias):
        update = mask_update(mask, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                             layer._group_sizes(mask))  # fmt: skip
        return partial_conv2d(x, weight, bias, update, layer.stride, layer.padding, layer.dilation, mask,
                              layer._group_sizes(mask))  # fmt: skip

    assert torch.autograd.gradcheck(output, (x, layer.weight, layer.bias))


def test_forward_masked_equals_forward_on_a_masked_input():
    gen = torch.Generator().manual_seed(4)
    layer = PartialConv2d(4, 6, 5, 2, 2)
    x = torch.randn(2, 4, 20, 20, generator=gen)
    mask = (torch.rand(2, 1, 20, 20, generator=gen) > 0.4).float()
    out, new_mask = layer(x, mask)
    update = layer.mask_update(mask)
    assert torch.equal(update.mask, new_mask)
    assert torch.equal(layer.forward_masked(x * mask, update), out)


@pytest.mark.parametrize("train", [True, False])
def test_unet_matches_the_reference_approach_in_float64(train):
    """The whole network, decoder concatenations and mask pyramid included; batch-norm
    statistics too, in training mode."""
    torch.manual_seed(0)
    model = PConvUNet("tiny").double().train(train)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.normal_(bn.bias)  # a visible shift, so a layer that forgot to mask would show
    reference_model = copy.deepcopy(model)
    image = torch.rand(2, 3, 64, 64, dtype=torch.float64, requires_grad=True)
    mask = mask_with_a_large_hole(2, 64, seed=5).double()

    out, _ = model(image, mask)
    ref_out = reference_unet(reference_model, image, mask, eps=EXACT_EPS)
    torch.testing.assert_close(out, ref_out, **TOLERANCE)
    ours = grads(out, [image, *model.parameters()])
    theirs = grads(ref_out, [image, *reference_model.parameters()])
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference, **TOLERANCE)
    for mine, reference in zip(model.buffers(), reference_model.buffers(), strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-12, atol=0)


def test_unet_mask_pyramid_gives_the_output_mask():
    model = PConvUNet("tiny")
    mask = mask_with_a_large_hole(1, 64, seed=0)
    encoder_updates, decoder_updates = model.mask_pyramid(mask)
    assert [u.mask.shape[-1] for u in encoder_updates] == [32, 16, 8, 4, 2]
    assert [u.mask.shape[-1] for u in decoder_updates] == [4, 8, 16, 32, 64]
    _, output_mask = model(torch.rand(1, 3, 64, 64), mask)
    assert torch.equal(output_mask, decoder_updates[-1].mask)
    assert (encoder_updates[2].mask == 0).any()  # the test's hole reaches the deeper levels
    assert all(u.ratio.dtype == torch.float32 and not u.ratio.requires_grad for u in encoder_updates)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_unet_under_autocast_matches_the_reference_approach(autocast_device, dtype):
    """The fast path in low precision against the reference in float32: outputs within
    rounding, gradients pointing the same way. (The reference itself cannot run under
    fp16 autocast: its epsilon underflows and its ratio becomes inf·0 = NaN.)"""
    device = autocast_device
    torch.manual_seed(1)
    model = PConvUNet("tiny").to(device)
    reference_model = copy.deepcopy(model)
    image = torch.rand(2, 3, 64, 64, device=device)
    mask = mask_with_a_large_hole(2, 64, seed=7).to(device)
    with torch.autocast(device, dtype=dtype):
        out, _ = model(image, mask)
    ref_out = reference_unet(reference_model, image, mask)
    assert out.dtype == dtype
    scale = ref_out.float().abs().max()
    torch.testing.assert_close(out.float() / scale, ref_out.float() / scale, rtol=0, atol=3e-2)
    ours = grads(out.float(), list(model.parameters()))
    assert all(grad.dtype == torch.float32 and torch.isfinite(grad).all() for grad in ours)
    theirs = grads(ref_out, list(reference_model.parameters()))
    ours, theirs = (torch.cat([grad.flatten() for grad in group]) for group in (ours, theirs))
    assert torch.nn.functional.cosine_similarity(ours, theirs, dim=0) > 0.98


def test_padding_same_and_valid_are_numbers():
    assert PartialConv2d(3, 4, 5, padding="same").padding == (2, 2)
    assert PartialConv2d(3, 4, 3, padding="same", dilation=2).padding == (2, 2)
    assert PartialConv2d(3, 4, 3, padding="valid").padding == (0, 0)
    with pytest.raises(ValueError, match="pads unevenly"):
        PartialConv2d(3, 4, 4, padding="same")
