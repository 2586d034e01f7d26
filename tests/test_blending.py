"""Blending fills into their holes' borders (pconv.inference.blending)."""

from __future__ import annotations

import pytest
import torch

from pconv.inference.blending import blend_into_border


def square_hole(size=48, top=12, bottom=36):
    mask = torch.ones(1, 1, size, size)
    mask[..., top:bottom, top:bottom] = 0
    return mask


def test_a_fill_with_a_colour_cast_comes_back_without_it_and_keeps_its_texture():
    mask = square_hole()
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    stripes = 0.1 * torch.sin(xs * 12)  # texture the blend must keep
    truth = torch.stack([0.2 + 0.5 * ys, 0.6 - 0.3 * xs, 0.4 + 0 * xs])[None] + stripes
    fill = truth + torch.tensor([0.15, -0.1, 0.05]).view(1, 3, 1, 1)  # right texture, wrong colour
    blended = blend_into_border(truth, fill, mask)
    hole = mask[0, 0] == 0
    assert (fill - truth)[..., hole].abs().mean() == pytest.approx(0.1, abs=1e-3)
    assert (blended - truth)[..., hole].abs().mean() < 0.02
    # known pixels are the fill's: the caller composites
    assert torch.equal(blended[..., ~hole], fill[..., ~hole].clamp(0, 1))


def test_a_fill_that_meets_the_border_is_left_as_it_is():
    mask = square_hole()
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    flat = torch.full_like(image, 0.3)
    image_flat = torch.where(mask.bool(), flat, image)  # flat known pixels, noise in the hole
    assert torch.allclose(blend_into_border(image_flat, flat, mask), flat, atol=1e-6)


def test_the_seam_at_the_border_goes_and_the_correction_fades_into_the_hole():
    mask = square_hole(64, 8, 56)
    image = torch.full((1, 3, 64, 64), 0.5)
    fill = image.clone()
    fill[..., 8:56, 8:56] = 0.5 + 0.2 * torch.linspace(0, 1, 48).view(1, 48)  # meets the left edge only
    blended = blend_into_border(image, fill, mask)
    seam_before = (fill[..., 8:56, 55] - 0.5).abs().mean()  # the column on the right border
    seam_after = (blended[..., 8:56, 55] - 0.5).abs().mean()
    assert seam_before == pytest.approx(0.2) and seam_after < 0.02
    assert (blended[..., 8:56, 8:56] <= fill[..., 8:56, 8:56] + 1e-6).all()


@pytest.mark.parametrize("known", [1.0, 0.0])
def test_without_a_hole_or_without_known_pixels_the_fill_is_unchanged(known):
    mask = torch.full((2, 1, 20, 30), known)
    image, fill = torch.rand(2, 3, 20, 30), torch.rand(2, 3, 20, 30)
    assert torch.equal(blend_into_border(image, fill, mask), fill)


def test_odd_sizes_and_images_in_a_batch_are_blended_separately():
    mask = torch.ones(2, 1, 37, 53)
    mask[0, :, 5:20, 7:30] = 0
    mask[1, :, 20:35, 30:50] = 0
    image = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    fill = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(2))
    together = blend_into_border(image, fill, mask)
    for i in range(2):
        alone = blend_into_border(image[i : i + 1], fill[i : i + 1], mask[i : i + 1])
        assert torch.allclose(together[i : i + 1], alone)
