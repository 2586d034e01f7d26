"""The paper's loss terms against direct computations, and VGG-16 input conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pconv.losses import (
    CONVENTIONS,
    PAPER_PERCEPTUAL_WEIGHT,
    PAPER_STYLE_WEIGHT,
    InpaintingLoss,
    LossWeights,
    VGG16Features,
    VGGWeightsError,
    border_band,
    gram_matrix,
    hole_total_variation,
    hole_windows,
    load_vgg16_features,
)

SHARED_VGG = Path(__file__).resolve().parents[2] / "shared" / "weights" / "vgg16_pool3_caffe.safetensors"


def random_vgg(convention="torchvision", seed=0) -> VGG16Features:
    torch.manual_seed(seed)
    return VGG16Features(convention)


def batch(seed=0, n=2, size=16):
    generator = torch.Generator().manual_seed(seed)
    output = torch.rand(n, 3, size, size, generator=generator)
    target = torch.rand(n, 3, size, size, generator=generator)
    mask = (torch.rand(n, 1, size, size, generator=generator) > 0.4).float()
    return output, target, mask


def test_gram_matrix_is_features_times_transpose_over_chw():
    features = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    gram = gram_matrix(features)
    for n in range(2):
        for i in range(4):
            for j in range(4):
                expected = sum(
                    features[n, i, y, x] * features[n, j, y, x] for y in range(3) for x in range(5)
                ) / (4 * 3 * 5)
                assert gram[n, i, j].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    assert gram.dtype == torch.float32


def test_gram_matrix_is_float32_under_autocast():
    features = torch.randn(1, 8, 4, 4).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(features).dtype == torch.float32


def test_total_variation_counts_neighbour_pairs_inside_the_dilated_hole():
    image = torch.rand(1, 3, 7, 8, dtype=torch.float64)
    mask = torch.ones(1, 1, 7, 8, dtype=torch.float64)
    mask[0, 0, 3, 4] = 0  # one hole pixel: the dilated region is rows 2-4, columns 3-5
    region = {(y, x) for y in range(2, 5) for x in range(3, 6)}
    expected = 0.0
    for y in range(7):
        for x in range(8):
            if (y, x) in region and (y, x + 1) in region:
                expected += (image[0, :, y, x + 1] - image[0, :, y, x]).abs().sum().item()
            if (y, x) in region and (y + 1, x) in region:
                expected += (image[0, :, y + 1, x] - image[0, :, y, x]).abs().sum().item()
    assert hole_total_variation(image, mask).item() == pytest.approx(expected / image.numel(), rel=1e-6)


def test_total_variation_is_zero_without_holes():
    image = torch.rand(2, 3, 8, 8)
    assert hole_total_variation(image, torch.ones(2, 1, 8, 8)).item() == 0


def test_every_term_matches_a_direct_computation():
    vgg = random_vgg()
    output, target, mask = batch()
    terms = InpaintingLoss(vgg)(output, target, mask)

    n_elements = output.numel()
    valid = (mask * (output - target)).abs().sum() / n_elements
    hole = ((1 - mask) * (output - target)).abs().sum() / n_elements
    comp = mask * target + (1 - mask) * output
    perceptual = style = 0.0
    for out_f, comp_f, gt_f in zip(vgg(output), vgg(comp), vgg(target), strict=True):
        perceptual += (out_f - gt_f).abs().mean() + (comp_f - gt_f).abs().mean()
        c, h, w = gt_f.shape[1:]

        def gram(f, c=c, h=h, w=w):
            flat = f.reshape(len(f), c, h * w)
            return flat @ flat.transpose(1, 2) / (c * h * w)

        style += (gram(out_f) - gram(gt_f)).abs().mean() + (gram(comp_f) - gram(gt_f)).abs().mean()
    expected = {"valid": valid, "hole": hole, "perceptual": perceptual, "style": style}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-4), name
    tv = hole_total_variation(comp, mask)
    assert terms["tv"].item() == pytest.approx(tv.item(), rel=1e-5)
    total = valid + 6 * hole + 0.05 * perceptual + 120 * style + 0.1 * tv
    assert terms["total"].item() == pytest.approx(total.item(), rel=1e-4)
    assert all(value.dtype == torch.float32 for value in terms.values())


def test_weights_are_configurable_and_terms_are_unweighted():
    vgg = random_vgg()
    output, target, mask = batch(seed=1)
    paper = InpaintingLoss(vgg)(output, target, mask)
    custom = InpaintingLoss(vgg, LossWeights(valid=2, hole=0, perceptual=0, style=0, tv=0))(
        output, target, mask
    )
    assert custom["hole"].item() == paper["hole"].item()
    assert custom["total"].item() == pytest.approx(2 * paper["valid"].item(), rel=1e-6)


def test_vgg_is_skipped_when_the_feature_terms_weigh_nothing():
    class Refusing(VGG16Features):
        def forward(self, image):
            raise AssertionError("VGG ran although its terms weigh 0")

    output, target, mask = batch(seed=3)
    pixel = InpaintingLoss(Refusing(), LossWeights(perceptual=0, style=0))(output, target, mask)
    paper = InpaintingLoss(random_vgg())(output, target, mask)
    assert list(pixel) == ["valid", "hole", "tv", "total"]
    expected = paper["valid"] + 6 * paper["hole"] + 0.1 * paper["tv"]
    assert pixel["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    without_vgg = InpaintingLoss(None, LossWeights(perceptual=0, style=0))(output, target, mask)
    assert without_vgg.keys() == pixel.keys()
    with pytest.raises(ValueError, match="need a VGG16Features"):
        InpaintingLoss(None, LossWeights(perceptual=0))
    only_style = InpaintingLoss(random_vgg(), LossWeights(perceptual=0))(output, target, mask)
    assert only_style["style"].item() == pytest.approx(paper["style"].item(), rel=1e-6)


def test_loss_is_zero_for_a_perfect_prediction_and_gradients_flow_to_the_output():
    vgg = random_vgg()
    _, target, mask = batch(seed=2)
    terms = InpaintingLoss(vgg)(target, target, mask)
    # Every term but total variation (the image's own texture) vanishes.
    assert all(
        terms[name].item() == pytest.approx(0, abs=1e-6) for name in ("valid", "hole", "perceptual", "style")
    )
    assert terms["tv"].item() == pytest.approx(hole_total_variation(target, mask).item())
    output = torch.rand_like(target, requires_grad=True)
    InpaintingLoss(vgg)(output, target, mask)["total"].backward()
    assert output.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_loss_under_bf16_autocast_is_finite_float32_and_close():
    vgg = random_vgg()
    output, target, mask = batch(seed=3, size=32)
    reference = InpaintingLoss(vgg)(output, target, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = InpaintingLoss(vgg)(output.bfloat16(), target, mask)
    for name in reference:
        assert mixed[name].dtype == torch.float32 and torch.isfinite(mixed[name])
        assert mixed[name].item() == pytest.approx(reference[name].item(), rel=0.1), name


def test_windows_are_centred_on_hole_pixels_and_stay_inside_the_image():
    torch.manual_seed(0)
    mask = torch.ones(3, 1, 40, 100)
    mask[0, 0, 20, 50] = 0  # one hole pixel: the window is centred on it
    mask[1, 0, 0, 99] = 0  # in a corner: the window moves inside
    corners = hole_windows(mask, 16)  # image 2 has no hole: any window inside
    assert corners[0].tolist() == [12, 42]
    assert corners[1].tolist() == [0, 84]
    assert 0 <= corners[2, 0] <= 24 and 0 <= corners[2, 1] <= 84
    spread = torch.ones(1, 1, 64, 64)
    spread[..., :8, :8] = spread[..., -8:, -8:] = 0  # two holes: both get drawn
    drawn = {tuple(hole_windows(spread, 16)[0].tolist()) for _ in range(40)}
    seeded = [
        hole_windows(spread.expand(8, -1, -1, -1), 16, torch.Generator().manual_seed(3)) for _ in range(2)
    ]
    assert torch.equal(*seeded)  # a seeded generator draws the same windows
    assert {(0, 0), (48, 48)} <= drawn and drawn <= {(r, c) for r in range(4) for c in range(4)} | {
        (48 - r, 48 - c) for r in range(4) for c in range(4)
    }


def test_window_loss_is_the_paper_loss_on_the_window():
    vgg = random_vgg()
    output, target, mask = batch(seed=7, n=2, size=48)
    torch.manual_seed(1)
    windowed = InpaintingLoss(vgg, vgg_crop=16)(output, target, mask)
    torch.manual_seed(1)
    corners = hole_windows(mask, 16)
    cut = [torch.stack([t[i, :, r : r + 16, c : c + 16] for i, (r, c) in enumerate(corners.tolist())])
           for t in (output, target, mask)]  # fmt: skip
    on_window = InpaintingLoss(vgg)(*cut)
    whole = InpaintingLoss(vgg)(output, target, mask)
    for name in ("perceptual", "style"):
        assert windowed[name].item() == pytest.approx(on_window[name].item(), rel=1e-5)
        assert windowed[name].item() != pytest.approx(whole[name].item(), rel=1e-3)
    for name in ("valid", "hole", "tv"):  # the pixel terms still see the whole image
        assert windowed[name].item() == whole[name].item()
    # A window as large as the image is the paper's form.
    assert InpaintingLoss(vgg, vgg_crop=48)(output, target, mask)["style"].item() == whole["style"].item()
    with pytest.raises(ValueError, match="vgg_crop"):
        InpaintingLoss(vgg, vgg_crop=4)


def test_window_loss_gradients_reach_only_the_window():
    vgg = random_vgg()
    _, target, mask = batch(seed=8, n=1, size=48)
    output = torch.rand_like(target, requires_grad=True)
    weights = LossWeights(valid=0, hole=0, tv=0)
    torch.manual_seed(2)
    InpaintingLoss(vgg, weights, vgg_crop=16)(output, target, mask)["total"].backward()
    torch.manual_seed(2)
    (row, column), reached = hole_windows(mask, 16)[0].tolist(), output.grad.abs().sum(1)[0] > 0
    assert reached[row : row + 16, column : column + 16].any()
    reached[row : row + 16, column : column + 16] = False
    assert not reached.any()


def test_default_feature_weights_follow_the_vgg_convention():
    torchvision, caffe = random_vgg("torchvision"), VGG16Features("caffe")
    assert InpaintingLoss(torchvision).weights == LossWeights(1, 6, 0.05, 120, 0.1)
    scale = CONVENTIONS["caffe"].feature_scale
    assert scale == pytest.approx(57.6, abs=0.1)  # 255 × the mean torchvision std
    weights = InpaintingLoss(caffe).weights
    assert (
        weights.perceptual
        == pytest.approx(PAPER_PERCEPTUAL_WEIGHT / scale)
        == pytest.approx(8.68e-4, rel=1e-3)
    )
    assert weights.style == pytest.approx(PAPER_STYLE_WEIGHT / scale**2) == pytest.approx(0.0361, rel=1e-2)
    given = InpaintingLoss(caffe, LossWeights(perceptual=2e-4)).weights  # what is given stays
    assert given.perceptual == 2e-4 and given.style == weights.style
    output, target, mask = batch(seed=9)
    terms = InpaintingLoss(caffe)(output, target, mask)
    expected = terms["valid"] + 6 * terms["hole"] + weights.perceptual * terms["perceptual"]
    expected += weights.style * terms["style"] + 0.1 * terms["tv"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-5)


def torchvision_to_caffe(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same network for Caffe inputs (BGR, 0-255, mean subtracted): fold the conventions into conv1_1."""
    tv, caffe = CONVENTIONS["torchvision"], CONVENTIONS["caffe"]
    weight, bias = state["features.0.weight"], state["features.0.bias"]
    converted = dict(state)
    std = torch.tensor(tv.std, dtype=weight.dtype)
    # RGB channel k is BGR channel 2 - k: x_k = (c + caffe_mean) / 255, t_k = (x_k - mean_k) / std_k.
    caffe_mean_rgb = torch.tensor(caffe.mean[::-1], dtype=weight.dtype)
    converted["features.0.weight"] = (weight / (255 * std).view(1, 3, 1, 1)).flip(1)
    offset = (caffe_mean_rgb / 255 - torch.tensor(tv.mean, dtype=weight.dtype)) / std
    converted["features.0.bias"] = bias + (weight.sum(dim=(2, 3)) * offset).sum(dim=1)
    return converted


def test_both_conventions_give_the_same_features_for_converted_weights():
    torchvision = random_vgg("torchvision", seed=4).double()
    caffe = VGG16Features("caffe").double()
    caffe.load_state_dict(torchvision_to_caffe(torchvision.state_dict()))
    image = torch.rand(2, 3, 96, 96, dtype=torch.float64)
    # Zero padding means a different colour in each convention, so only pixels that
    # never see the padding (margin 1, 2, 3 after pool1, pool2, pool3) must agree.
    for margin, a, b in zip((1, 2, 3), torchvision(image), caffe(image), strict=True):
        inner = (..., slice(margin, -margin), slice(margin, -margin))
        torch.testing.assert_close(a[inner], b[inner], rtol=1e-5, atol=1e-5)
        # float32 constants explain the inner differences; the borders differ far more.
        assert (a - b).abs().max() > 100 * (a[inner] - b[inner]).abs().max()


def test_normalisation_follows_each_convention():
    red, green, blue = 0.2, 0.5, 0.8
    image = torch.tensor([red, green, blue]).view(1, 3, 1, 1)
    caffe = VGG16Features("caffe").normalize(image).flatten()
    expected = [blue * 255 - 103.939, green * 255 - 116.779, red * 255 - 123.68]
    torch.testing.assert_close(caffe, torch.tensor(expected))
    tv = VGG16Features("torchvision").normalize(image).flatten()
    expected = [(red - 0.485) / 0.229, (green - 0.456) / 0.224, (blue - 0.406) / 0.225]
    torch.testing.assert_close(tv, torch.tensor(expected))


def test_safetensors_weights_carry_their_convention(tmp_path):
    state = {key: value.contiguous() for key, value in random_vgg(seed=5).state_dict().items()}
    path = tmp_path / "vgg.safetensors"
    save_file(state, path, metadata={"input": "caffe: BGR 0..255 minus mean"})
    model = load_vgg16_features(path)
    assert model.convention.name == "caffe"
    torch.testing.assert_close(model.state_dict()["features.14.bias"], state["features.14.bias"])
    assert not any(p.requires_grad for p in model.parameters())

    save_file(state, path, metadata={"origin": "somewhere"})
    with pytest.raises(VGGWeightsError, match="does not state its input convention"):
        load_vgg16_features(path)


def test_torchvision_state_dicts_load_with_classifier_keys_ignored(tmp_path):
    state = random_vgg(seed=6).state_dict() | {"classifier.0.weight": torch.zeros(2, 2)}
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = load_vgg16_features(path)
    assert model.convention.name == "torchvision"
    torch.testing.assert_close(model.state_dict()["features.0.weight"], state["features.0.weight"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a weights file", "cannot read VGG weights"),
        (None, "does not exist"),
    ],
)
def test_bad_weight_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "vgg.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VGGWeightsError, match=message):
        load_vgg16_features(path)


def test_incomplete_weights_name_the_missing_layers(tmp_path):
    state = {k: v for k, v in random_vgg().state_dict().items() if not k.startswith("features.14")}
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    with pytest.raises(VGGWeightsError, match=r"features\.14\.bias"):
        load_vgg16_features(path)


@pytest.mark.skipif(not SHARED_VGG.exists(), reason="../shared/weights is not present (developer data)")
def test_shared_caffe_weights_load_and_respond_to_images():
    model = load_vgg16_features(SHARED_VGG)
    assert model.convention.name == "caffe"
    flat, textured = torch.full((1, 3, 32, 32), 0.5), torch.rand(1, 3, 32, 32)
    pools = model(textured)
    assert [p.shape[1] for p in pools] == [64, 128, 256]
    assert (model(flat)[2] - pools[2]).abs().mean() > 0.1


def test_border_term_weighs_only_the_band_along_the_hole_border():
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0  # an 8x8 hole: a 3 px band around a 2x2 centre
    band = border_band(mask)
    assert band.sum() == 64 - 4 and band[..., 7:9, 7:9].sum() == 0 and (band * mask).sum() == 0
    target = torch.zeros(1, 3, 16, 16)
    centre_only = torch.zeros_like(target)
    centre_only[..., 7:9, 7:9] = 1.0  # wrong only where the band is not
    along_border = torch.zeros_like(target)
    along_border[..., 4, 4:12] = 1.0  # wrong only on the hole's first row
    loss = InpaintingLoss(None, LossWeights(perceptual=0, style=0, border=2.0))
    assert loss(centre_only, target, mask)["border"] == 0
    terms = loss(along_border, target, mask)
    assert terms["border"] == pytest.approx(8 * 3 / target.numel())
    assert terms["total"] == pytest.approx(6 * terms["hole"] + 0.1 * terms["tv"] + 2 * terms["border"])
    assert "border" not in InpaintingLoss(None, LossWeights(perceptual=0, style=0))(
        along_border, target, mask
    )
