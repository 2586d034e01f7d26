"""PartialConv2d against a slow, explicit reference (SPEC §1)."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from pconv import PartialConv2d
from pconv.layers import mask_update


def explicit_partial_conv(
    x: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation
) -> tuple[Tensor, Tensor]:
    """SPEC §1 window by window. ``mask`` is per channel, ``(N, C_in, H, W)``."""
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    out_h = (height + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    # Each column is one window: C_in·kh·kw elements, zero padding included (as hole).
    x_cols = F.unfold(x * mask, (kh, kw), dilation, padding, stride)
    m_cols = F.unfold(mask, (kh, kw), dilation, padding, stride)
    w_rows = weight.reshape(c_out, -1)
    window_size = c_in * kh * kw
    out = torch.zeros(n, c_out, out_h * out_w, dtype=x.dtype)
    new_mask = torch.zeros(n, 1, out_h * out_w, dtype=x.dtype)
    for i in range(n):
        for j in range(out_h * out_w):
            known = m_cols[i, :, j].sum()
            if known > 0:
                value = w_rows @ x_cols[i, :, j] * (window_size / known)
                out[i, :, j] = value + bias if bias is not None else value
                new_mask[i, 0, j] = 1
    return out.view(n, c_out, out_h, out_w), new_mask.view(n, 1, out_h, out_w)


def random_case(rng: random.Random):
    """A random layer geometry, input, and per-channel mask with varied hole density."""
    kernel = (rng.randint(1, 5), rng.randint(1, 5))
    stride = (rng.randint(1, 3), rng.randint(1, 3))
    dilation = (rng.randint(1, 2), rng.randint(1, 2))
    padding = (rng.randint(0, kernel[0]), rng.randint(0, kernel[1]))
    min_h = dilation[0] * (kernel[0] - 1) + 1 - 2 * padding[0]
    min_w = dilation[1] * (kernel[1] - 1) + 1 - 2 * padding[1]
    shape = (
        rng.randint(1, 2),
        rng.randint(1, 5),
        max(min_h, 1) + rng.randint(0, 9),
        max(min_w, 1) + rng.randint(0, 9),
    )
    c_out = rng.randint(1, 4)
    generator = torch.Generator().manual_seed(rng.randint(0, 2**31))
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    hole_density = rng.choice([0.1, 0.5, 0.9, 0.97])
    return kernel, stride, padding, dilation, c_out, x, hole_density, generator


def make_layer(c_in, c_out, kernel, stride, padding, dilation, bias, **kwargs) -> PartialConv2d:
    layer = PartialConv2d(c_in, c_out, kernel, stride, padding, dilation, bias, **kwargs).double()
    if bias:
        torch.nn.init.normal_(layer.bias)  # a visible bias, so leaks into holes would show
    return layer


def assert_matches_reference(layer: PartialConv2d, x: Tensor, mask: Tensor, per_channel_mask: Tensor) -> None:
    out, new_mask = layer(x, mask)
    ref_out, ref_mask = explicit_partial_conv(
        x, per_channel_mask, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation
    )
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-12)
    assert torch.equal(new_mask, ref_mask)


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("bias", [True, False])
def test_matches_reference_with_shared_and_per_channel_masks(seed, bias):
    kernel, stride, padding, dilation, c_out, x, density, gen = random_case(random.Random(seed))
    layer = make_layer(x.shape[1], c_out, kernel, stride, padding, dilation, bias)

    shared = (torch.rand(x.shape[0], 1, *x.shape[2:], generator=gen) > density).double()
    assert_matches_reference(layer, x, shared, shared.expand_as(x).contiguous())

    per_channel = (torch.rand(x.shape, generator=gen, dtype=torch.float64) > density).double()
    assert_matches_reference(layer, x, per_channel, per_channel)


@pytest.mark.parametrize("seed", range(20))
def test_matches_reference_with_grouped_masks(seed):
    rng = random.Random(1000 + seed)
    kernel, stride, padding, dilation, c_out, _, density, gen = random_case(rng)
    groups = (rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 2))
    x = torch.randn(2, sum(groups), 9, 11, generator=gen, dtype=torch.float64)
    layer = make_layer(sum(groups), c_out, kernel, stride, padding, dilation, True, mask_groups=groups)
    grouped = (torch.rand(2, len(groups), 9, 11, generator=gen) > density).double()
    per_channel = grouped.repeat_interleave(torch.tensor(groups), dim=1)
    assert_matches_reference(layer, x, grouped, per_channel)


def test_new_mask_marks_windows_with_a_known_element():
    layer = PartialConv2d(1, 1, 3, padding=1)
    mask = torch.zeros(1, 1, 7, 7)
    mask[0, 0, 3, 3] = 1
    _, new_mask = layer(torch.randn(1, 1, 7, 7), mask)
    expected = torch.zeros(1, 1, 7, 7)
    expected[0, 0, 2:5, 2:5] = 1
    assert torch.equal(new_mask, expected)


def test_ratio_uses_the_full_window_and_padding_is_hole():
    # A 3×3 window centred on a corner of an all-known 4×4 image sees 4 pixels.
    ratio, _ = mask_update(torch.ones(1, 1, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1), (5,))
    assert ratio[0, 0, 0, 0] == 9 / 4
    assert ratio[0, 0, 0, 1] == 9 / 6
    assert ratio[0, 0, 1, 1] == 1


def test_gradcheck():
    gen = torch.Generator().manual_seed(0)
    layer = make_layer(3, 2, (3, 2), (2, 1), (1, 1), (1, 2), True)
    x = torch.randn(2, 3, 7, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(2, 1, 7, 6, generator=gen) > 0.5).double()
    params = {"weight": layer.weight.detach().requires_grad_(), "bias": layer.bias.detach().requires_grad_()}

    def output(x, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x, mask))[0]

    assert torch.autograd.gradcheck(output, (x, params["weight"], params["bias"]))


@pytest.mark.parametrize("mask_channels", ["shared", "per_channel"])
def test_output_ignores_values_in_holes(mask_channels):
    gen = torch.Generator().manual_seed(1)
    layer = PartialConv2d(4, 6, 3, stride=2, padding=1)
    x = torch.randn(2, 4, 16, 16, generator=gen)
    channels = 1 if mask_channels == "shared" else 4
    mask = (torch.rand(2, channels, 16, 16, generator=gen) > 0.6).float()
    hole = (1 - mask).bool().expand_as(x)
    fills = [torch.zeros_like(x), torch.randn(x.shape, generator=gen), torch.full_like(x, 1e4)]
    outputs = [layer(torch.where(hole, fill, x), mask) for fill in fills]
    for out, new_mask in outputs[1:]:
        assert torch.equal(out, outputs[0][0])
        assert torch.equal(new_mask, outputs[0][1])


def test_all_hole_mask_gives_zeros_and_no_bias():
    layer = PartialConv2d(3, 5, 3, padding=1)
    torch.nn.init.constant_(layer.bias, 2.0)
    out, new_mask = layer(torch.randn(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(new_mask, torch.zeros_like(new_mask))


def test_all_known_mask_without_padding_is_a_plain_convolution():
    layer = PartialConv2d(3, 5, 3, stride=2, dilation=2)
    x = torch.randn(2, 3, 13, 11)
    out, new_mask = layer(x, torch.ones(2, 1, 13, 11))
    torch.testing.assert_close(out, F.conv2d(x, layer.weight, layer.bias, 2, 0, 2))
    assert torch.equal(new_mask, torch.ones_like(new_mask))


def test_state_dict_and_init_follow_conv2d():
    layer = PartialConv2d(3, 8, (5, 3), padding=(2, 1), bias=True)
    conv = torch.nn.Conv2d(3, 8, (5, 3), padding=(2, 1))
    assert layer.weight.shape == (8, 3, 5, 3) and layer.bias.shape == (8,)
    assert layer.state_dict().keys() == conv.state_dict().keys()
    layer.load_state_dict(conv.state_dict())
    assert PartialConv2d(3, 8, 3, bias=False).bias is None


def test_bool_mask_is_accepted():
    layer = PartialConv2d(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 6, 6)
    mask = torch.rand(1, 1, 6, 6) > 0.5
    out_bool, mask_bool = layer(x, mask)
    out_float, mask_float = layer(x, mask.float())
    assert torch.equal(out_bool, out_float) and torch.equal(mask_bool, mask_float)


@pytest.mark.parametrize(
    ("x_shape", "mask_shape", "message"),
    [
        ((1, 3, 8, 8), (1, 1, 8, 9), "spatial size"),
        ((1, 3, 8, 8), (2, 1, 8, 8), "batch"),
        ((1, 3, 8, 8), (1, 2, 8, 8), "mask has 2 channels"),
        ((1, 4, 8, 8), (1, 1, 8, 8), "layer expects 3"),
        ((3, 8, 8), (1, 8, 8), "4-D"),
    ],
)
def test_bad_shapes_raise_clear_errors(x_shape, mask_shape, message):
    layer = PartialConv2d(3, 2, 3)
    with pytest.raises(ValueError, match=message):
        layer(torch.randn(x_shape), torch.ones(mask_shape))


def test_mask_groups_must_sum_to_in_channels():
    with pytest.raises(ValueError, match="sum to in_channels=5"):
        PartialConv2d(5, 2, 3, mask_groups=(2, 2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mask_channels", [1, 64])
def test_autocast_is_finite_and_close_to_fp32(autocast_device, dtype, mask_channels):
    device = autocast_device
    gen = torch.Generator().manual_seed(2)
    layer = PartialConv2d(64, 32, 7, padding=3).to(device)
    x = torch.randn(2, 64, 24, 24, generator=gen).to(device)
    # Mostly holes, so many windows see a single known element: ratio up to 64·49 = 3136.
    mask = (torch.rand(2, mask_channels, 24, 24, generator=gen) > 0.98).float().to(device)
    with torch.autocast(device, dtype=dtype):
        out, new_mask = layer(x, mask)
        out.float().sum().backward()
    assert out.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(layer.weight.grad).all()
    reference, reference_mask = layer(x, mask)
    assert torch.equal(new_mask, reference_mask)
    scale = reference.abs().max()
    torch.testing.assert_close(out.float() / scale, reference / scale, rtol=0, atol=2e-2)
