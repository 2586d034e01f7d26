"""PConvUNet: shapes, hole invariance, presets, batch-norm freezing (SPEC §2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pconv import PConvUNet, composite, list_presets, pad_to_multiple
from pconv.models import UNetConfig, get_preset, register_preset
from pconv.models.unet import _upsampled


def random_inputs(shape=(2, 3, 64, 64), hole_fraction=0.4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n, _, h, w = shape
    image = torch.rand(shape, generator=gen)
    mask = (torch.rand(n, 1, h, w, generator=gen) > hole_fraction).float()
    return image, mask


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_preset_matches_the_paper():
    model = PConvUNet("paper")
    # The paper reports about 32.85 M; ours has no bias before batch norm.
    assert count_parameters(model) == 32_859_796
    assert abs(count_parameters(model) / 32.85e6 - 1) < 1e-3
    assert [b.conv.kernel_size[0] for b in model.encoder] == [7, 5, 5, 3, 3, 3, 3, 3]
    assert [b.conv.out_channels for b in model.encoder] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert [b.conv.out_channels for b in model.decoder] == [512, 512, 512, 512, 256, 128, 64, 3]
    assert model.decoder[-1].conv.in_channels == 64 + 3
    assert isinstance(model.encoder[0].bn, nn.Identity) and isinstance(model.decoder[-1].bn, nn.Identity)
    assert all(isinstance(b.bn, nn.BatchNorm2d) for b in [*model.encoder[1:], *model.decoder[:-1]])
    assert all(isinstance(b.act, nn.ReLU) for b in model.encoder)
    assert all(isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in model.decoder[:-1])
    assert isinstance(model.decoder[-1].act, nn.Identity)


def test_depth_7_drops_the_deepest_level():
    model = PConvUNet("paper", depth=7)
    assert len(model.encoder) == len(model.decoder) == 7
    assert count_parameters(PConvUNet("paper")) - count_parameters(model) == (
        (512 * 512 * 9 + 2 * 512)  # encoder level 8 and its batch norm
        + (1024 * 512 * 9 + 2 * 512)  # the decoder step that consumed it
    )


def test_paper_preset_on_an_odd_size():
    model = PConvUNet("paper").eval()
    image, mask = random_inputs((1, 3, 333, 517))
    with torch.no_grad():
        output, output_mask = model(image, mask)
    assert output.shape == (1, 3, 333, 517) and output_mask.shape == (1, 1, 333, 517)
    assert torch.isfinite(output).all()


@pytest.mark.parametrize("size", [(1, 1), (31, 64), (65, 47), (128, 128)])
def test_any_size_is_padded_and_cropped_back(size):
    model = PConvUNet("tiny").eval()
    image, mask = random_inputs((2, 3, *size))
    with torch.no_grad():
        output, output_mask = model(image, mask)
    assert output.shape == image.shape and output_mask.shape == mask.shape


@pytest.mark.parametrize("preset", ["tiny", "mini"])
def test_output_ignores_values_in_holes(preset):
    model = PConvUNet(preset).eval()
    image, mask = random_inputs((2, 3, 70, 90))
    hole = mask == 0
    with torch.no_grad():
        outputs = [
            model(torch.where(hole, fill, image), mask)[0]
            for fill in (torch.zeros_like(image), torch.randn_like(image), torch.full_like(image, 1e4))
        ]
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_trains(preset):
    """Every parameter gets a finite gradient and moves within two steps (a preset with a
    base starts with its last layer at zero, so the layers before it move from the second)."""
    torch.manual_seed(0)
    model = PConvUNet(preset).train()
    size = max(model.multiple, 16)
    image, mask = random_inputs((2, 3, size, size))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        output, _ = model(image, mask)
        assert torch.isfinite(output).all()
        ((output - image) ** 2).mean().backward()
        not_finite = [name for name, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
        assert not not_finite, f"parameters without a finite gradient: {not_finite}"
        optimizer.step()
    unmoved = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert not unmoved, f"parameters that did not move: {unmoved}"


def test_config_rebuilds_the_same_architecture():
    model = PConvUNet("mini", depth=6)
    clone = PConvUNet(**model.config)
    clone.load_state_dict(model.state_dict())
    assert clone.config == {"preset": "mini", "depth": 6, "in_channels": 3}


def test_composite_keeps_known_pixels_bit_exactly():
    image, mask = random_inputs((2, 3, 32, 32))
    output = torch.full_like(image, float("nan"))
    output[mask.expand_as(image) == 0] = 0.5
    result = composite(image, output, mask)
    known = mask.expand_as(image) == 1
    assert torch.equal(result[known], image[known])
    assert torch.equal(result[~known], torch.full_like(result[~known], 0.5))


def test_pad_to_multiple_pads_with_hole_and_crops_back():
    image, mask = random_inputs((1, 3, 30, 17))
    padded, padded_mask, (left, right, top, bottom) = pad_to_multiple(image, mask, 16)
    assert padded.shape[-2:] == (32, 32) and (left, right, top, bottom) == (7, 8, 1, 1)
    assert padded_mask.sum() == mask.sum()
    assert torch.equal(padded[..., top : top + 30, left : left + 17], image)


def test_freeze_encoder_bn_keeps_encoder_statistics_fixed():
    torch.manual_seed(0)
    model = PConvUNet("tiny").freeze_encoder_bn()
    model.train()
    encoder_bns = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_bns = [m for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    image, mask = random_inputs((2, 3, 64, 64))
    output, _ = model(image, mask)
    ((output - image) ** 2).mean().backward()
    optimizer.step()

    assert encoder_bns and all(not bn.training for bn in encoder_bns)
    assert all(bn.training for bn in decoder_bns)
    after = model.state_dict()
    for name, value in before.items():
        is_encoder_bn = name.startswith("encoder.") and ".bn." in name
        changed = not torch.equal(value, after[name])
        if is_encoder_bn:
            assert not changed, f"{name} changed while the encoder batch norm was frozen"
        elif name.endswith(("running_mean", "weight")):
            assert changed, f"{name} did not train"

    model.freeze_encoder_bn(False).train()
    assert all(bn.training and bn.weight.requires_grad for bn in encoder_bns)


def test_bad_inputs_raise_clear_errors():
    model = PConvUNet("tiny")
    image, mask = random_inputs((1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"mask must be \(N, 1, H, W\)"):
        model(image, mask[..., :31])
    with pytest.raises(ValueError, match="image must be"):
        model(image[:, :2], mask)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        PConvUNet("huge")
    with pytest.raises(ValueError, match=r"depth 1\.\.5"):
        PConvUNet("tiny", depth=6)


def test_presets_are_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_preset("paper", UNetConfig((8,), (3,), 1))
    assert get_preset("paper").depth == 8


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_forward_and_backward_are_finite(dtype):
    torch.manual_seed(0)
    model = PConvUNet("tiny").train()
    image, mask = random_inputs((2, 3, 64, 64), hole_fraction=0.9)
    with torch.autocast("cpu", dtype=dtype):
        output, _ = model(image, mask)
        ((output.float() - image) ** 2).mean().backward()
    assert torch.isfinite(output).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_bilinear_preset_runs_minis_weights_with_bilinear_upsampling():
    """Same parameters and masks as ``mini``; only the decoder's enlarged features differ."""
    torch.manual_seed(0)
    nearest, bilinear = PConvUNet("mini", 4).eval(), PConvUNet("mini-bilinear", 4).eval()
    bilinear.load_state_dict(nearest.state_dict())
    image, mask = random_inputs((1, 3, 64, 64))
    with torch.no_grad():
        (out_nearest, mask_nearest), (out_bilinear, mask_bilinear) = (
            nearest(image, mask),
            bilinear(image, mask),
        )
    assert torch.equal(mask_nearest, mask_bilinear) and not torch.allclose(out_nearest, out_bilinear)
    features = torch.arange(4.0).view(1, 1, 2, 2)
    expected = torch.nn.functional.interpolate(features, scale_factor=2.0, mode="bilinear")
    assert torch.equal(_upsampled(features, 2, "bilinear"), expected)
