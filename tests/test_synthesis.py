"""Fills refined with patch synthesis (pconv.inference.synthesis, Inpainter(refine=True))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pconv.inference import Inpainter
from pconv.inference.synthesis import synthesize
from pconv.masks import MaskError


def stripes(size=96, period=8):
    """``(1, 3, size, size)`` diagonal colour stripes of ``period`` pixels."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    phase = 2 * torch.pi * (x + y) / period
    return torch.stack([0.5 + 0.3 * torch.sin(phase), 0.5 + 0.3 * torch.cos(phase), 0.4 + 0 * phase])[None]


def square_hole(size=96, first=32, last=64):
    mask = torch.ones(1, 1, size, size)
    mask[..., first:last, first:last] = 0
    return mask


def test_a_hole_in_a_periodic_texture_comes_back_with_that_texture():
    image, mask = stripes(), square_hole()
    guide = image.mean(dim=(2, 3), keepdim=True).expand_as(image)  # a flat fill, as a blurry network gives
    refined = synthesize(image, guide, mask)
    hole = mask.expand_as(image) == 0
    guide_error = (guide - image)[hole].abs().mean()
    refined_error = (refined - image)[hole].abs().mean()
    assert refined_error < 0.15 * guide_error
    detail = (
        refined[..., 33:63, 33:63].diff(dim=3).abs().mean()
        / image[..., 33:63, 33:63].diff(dim=3).abs().mean()
    )
    assert 0.8 < detail < 1.2


def test_a_flat_image_stays_flat():
    image = torch.full((1, 3, 64, 80), 0.3)
    refined = synthesize(image, image.clone(), square_hole(64, 20, 44)[..., :80].expand(1, 1, 64, 64).clone())
    torch.testing.assert_close(refined, image)


def test_only_holes_change_and_the_result_is_deterministic_under_a_seed():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 72, 72)
    fill = torch.rand(2, 3, 72, 72)
    mask = square_hole(72, 20, 50).repeat(2, 1, 1, 1)
    first = synthesize(image, fill, mask, seed=3)
    torch.testing.assert_close(first * mask, fill * mask)  # known pixels: the fill's, as with blending
    torch.testing.assert_close(synthesize(image, fill, mask, seed=3), first, rtol=0, atol=0)
    assert not torch.equal(synthesize(image, fill, mask, seed=4), first)


def test_a_hole_without_known_patches_in_reach_keeps_the_guide():
    image, fill = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    mask = torch.zeros(1, 1, 24, 24)
    mask[..., :3, :] = 1  # a known strip thinner than a patch
    torch.testing.assert_close(synthesize(image, fill, mask), fill)


@pytest.fixture
def refining(tiny_weights):
    return Inpainter(tiny_weights, "cpu", refine=True, seed=1)


def test_the_inpainter_keeps_known_pixels_and_refines_on_request(tiny_weights, refining):
    image = (stripes(64)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[20:44, 16:40] = True
    refined = refining.inpaint(image, hole)
    np.testing.assert_array_equal(refined[~hole], image[~hole])
    plain = Inpainter(tiny_weights, "cpu").inpaint(image, hole)
    assert not np.array_equal(refined, plain)
    np.testing.assert_array_equal(refining.inpaint(image, hole, refine=False), plain)
    again = Inpainter(tiny_weights, "cpu", seed=1).inpaint(image, hole, refine=True)
    np.testing.assert_array_equal(again, refined)  # the same seed: the same result


def test_large_images_are_refined_window_by_window(tiny_weights):
    image = (stripes(160)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    hole = np.zeros((160, 160), bool)
    hole[20:40, 20:40] = hole[110:140, 100:150] = True
    windows = {"max_pixels": 128 * 128, "context": 32}  # 160² is inpainted in windows
    refined = Inpainter(tiny_weights, "cpu", refine=True, **windows).inpaint(image, hole)
    plain = Inpainter(tiny_weights, "cpu", **windows).inpaint(image, hole)
    np.testing.assert_array_equal(refined[~hole], image[~hole])
    for rows, columns in ((slice(20, 40), slice(20, 40)), (slice(110, 140), slice(100, 150))):
        assert (refined[rows, columns] != plain[rows, columns]).any(
            axis=-1
        ).mean() > 0.5  # each window refined


def test_bad_masks_are_refused_as_without_refining(refining):
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(MaskError, match="covers the whole image"):
        refining.inpaint(image, np.ones((32, 32), bool))
    with pytest.raises(MaskError, match="16×32"):
        refining.inpaint(image, np.zeros((32, 16), bool))
