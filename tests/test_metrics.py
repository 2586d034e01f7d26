"""L1 (%), PSNR and SSIM against hand-computed values and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv.eval import l1_percent, psnr, ssim


def as_batch(*images: np.ndarray) -> torch.Tensor:
    """(H, W, C) arrays → (N, C, H, W) float64."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).double()


def test_l1_and_psnr_of_a_constant_error():
    target = torch.zeros(1, 3, 8, 8)
    prediction = torch.full((1, 3, 8, 8), 25.5)
    assert l1_percent(prediction, target, data_range=255).item() == pytest.approx(10.0)
    assert psnr(prediction, target, data_range=255).item() == pytest.approx(20 * math.log10(255 / 25.5))


def test_metrics_are_per_image():
    target = torch.zeros(2, 3, 8, 8)
    prediction = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.2)])
    torch.testing.assert_close(
        l1_percent(prediction, target), torch.tensor([10.0, 20.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        psnr(prediction, target), torch.tensor([20.0, 20 * math.log10(5)], dtype=torch.float64)
    )


def test_identical_images():
    image = torch.rand(1, 3, 16, 16)
    assert psnr(image, image).item() == math.inf
    assert ssim(image, image).item() == pytest.approx(1.0)
    assert l1_percent(image, image).item() == 0


def test_ssim_of_constant_images_by_hand():
    # Constant windows: no variance, so SSIM = (2·a·b + C1) / (a² + b² + C1).
    a, b, c1 = 100.0, 120.0, (0.01 * 255) ** 2
    first, second = torch.full((1, 1, 9, 9), a), torch.full((1, 1, 9, 9), b)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(first, second, data_range=255).item() == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(32, 40, 3), (7, 7, 3), (64, 31, 3)])
def test_against_scikit_image(shape):
    rng = np.random.default_rng(sum(shape))
    target = rng.integers(0, 256, shape).astype(np.float64)
    prediction = np.clip(target + rng.normal(0, 25, shape), 0, 255).round()
    batch_p, batch_t = as_batch(prediction), as_batch(target)
    assert ssim(batch_p, batch_t, data_range=255).item() == pytest.approx(
        structural_similarity(prediction, target, channel_axis=-1, data_range=255), rel=1e-10
    )
    assert psnr(batch_p, batch_t, data_range=255).item() == pytest.approx(
        peak_signal_noise_ratio(target, prediction, data_range=255), rel=1e-10
    )


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match="at least 7"):
        ssim(torch.zeros(1, 3, 6, 8), torch.zeros(1, 3, 6, 8))
