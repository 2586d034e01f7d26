"""L1 (%), PSNR and SSIM against hand-computed values and scikit-image; detail on hand-made images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv.eval import BORDER_BANDS, border_band_l1, detail, l1_percent, psnr, ssim


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


def stripes(size: int = 40, period: int = 2) -> torch.Tensor:
    """A grey ``(1, 3, size, size)`` image of vertical stripes 0/1 (period 2: a one-pixel pattern)."""
    column = (torch.arange(size) // (period // 2)) % 2
    return column.double().expand(1, 3, size, size).clone()


def square_hole(size: int = 40, start: int = 10, stop: int = 30) -> torch.Tensor:
    hole = torch.zeros(1, 1, size, size)
    hole[..., start:stop, start:stop] = 1
    return hole


def test_detail_is_one_for_the_truth_zero_for_a_flat_fill_and_scales_with_contrast():
    truth, hole = stripes(), square_hole()
    assert detail(truth, truth, hole).item() == 1.0
    flat = torch.where(hole.bool(), 0.5, truth)
    assert detail(flat, truth, hole).item() == 0.0
    faint = torch.where(hole.bool(), 0.25 + truth / 2, truth)  # half the contrast
    assert detail(faint, truth, hole).item() == pytest.approx(0.5)
    noisy = torch.where(hole.bool(), truth * 2 - 0.5, truth)  # twice the contrast
    assert detail(noisy, truth, hole).item() == pytest.approx(2.0)
    assert detail(faint * 255, truth * 255, hole).item() == pytest.approx(0.5)  # any data range


def test_detail_leaves_out_four_pixels_of_the_hole_rim():
    truth, hole = stripes(), square_hole()  # the hole is rows/columns 10-29: 14-25 count
    rim_only = torch.where(hole.bool(), 0.5, truth)
    rim_only[..., 10:14, 10:30] = truth[..., 10:14, 10:30]  # texture (or a seam) in the rim
    assert detail(rim_only, truth, hole).item() == 0.0
    inner = torch.where(hole.bool(), 0.5, truth)
    inner[..., 14:26, 14:26] = truth[..., 14:26, 14:26]
    assert detail(inner, truth, hole).item() == pytest.approx(1.0, abs=0.1)  # the last row/column differ
    assert detail(inner, truth, hole, erosion=0).item() < 0.6


def test_detail_is_nan_where_it_is_undefined_and_holes_at_the_image_border_are_not_eroded_there():
    truth = stripes()
    thin = square_hole(start=10, stop=18)  # 8 px wide: nothing left after eroding 4 px per side
    assert math.isnan(detail(truth, truth, thin).item())
    flat_truth = torch.full_like(truth, 0.3)
    assert math.isnan(detail(truth, flat_truth, square_hole()).item())
    corner = torch.zeros(1, 1, 40, 40)
    corner[..., :6, :6] = 1  # 6 px in the corner: only the side facing the image is eroded
    flat = torch.where(corner.bool(), 0.5, truth)
    assert detail(flat, truth, corner).item() == 0.0
    values = detail(torch.cat([truth, flat]), torch.cat([truth, truth]), torch.cat([corner, corner]))
    assert values.tolist() == [1.0, 0.0] and values.dtype == torch.float64


def test_border_bands_split_the_hole_by_distance_from_the_nearest_known_pixel():
    hole = square_hole(size=40, start=5, stop=35)  # 30 px: distances 1 to 15 from the border
    truth = torch.zeros(1, 3, 40, 40, dtype=torch.float64)
    rows, columns = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    distance = torch.minimum(torch.minimum(rows - 4, 35 - rows), torch.minimum(columns - 4, 35 - columns))
    prediction = (distance.clamp(min=0) / 100).double().expand(1, 3, 40, 40)  # error = distance %
    bands = border_band_l1(prediction, truth, hole)[0]
    assert [name for name, _, _ in BORDER_BANDS] == ["1", "2", "3", "4-8", ">8"]
    assert bands[:3].tolist() == pytest.approx([1.0, 2.0, 3.0])
    ring = {d: (30 - 2 * (d - 1)) ** 2 - (30 - 2 * d) ** 2 for d in range(1, 16)}  # pixels at distance d
    middle = sum(d * ring[d] for d in range(4, 9)) / sum(ring[d] for d in range(4, 9))
    deep = sum(d * ring[d] for d in range(9, 16)) / sum(ring[d] for d in range(9, 16))
    assert bands[3].item() == pytest.approx(middle) and bands[4].item() == pytest.approx(deep)
    small = border_band_l1(prediction, truth, square_hole(size=40, start=10, stop=14))[0]  # 4 px: bands 1-2
    assert not math.isnan(small[1]) and all(math.isnan(v) for v in small[2:].tolist())
