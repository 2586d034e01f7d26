"""Image-quality metrics: the paper's L1 (%), PSNR and SSIM, and the detail in holes, per image.

Every function takes two batches ``(N, C, H, W)`` on the same scale, ``data_range``
being the span of valid values (1.0 for [0, 1] images, 255 for 8-bit values), and
returns a float64 ``(N,)`` tensor with one value per image. The computation runs in
float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BORDER_BANDS", "DETAIL_EROSION", "border_band_l1", "detail", "l1_percent", "psnr", "ssim"]

#: Pixels of the hole's rim that :func:`detail` leaves out (seams and halos are not detail).
DETAIL_EROSION = 4


def _pair(prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if prediction.shape != target.shape or prediction.dim() != 4:
        raise ValueError(
            f"expected two (N, C, H, W) batches of the same shape, got {tuple(prediction.shape)} "
            f"and {tuple(target.shape)}"
        )
    return prediction.double(), target.double()


def l1_percent(prediction: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean absolute error over pixels and channels, in % of ``data_range``."""
    prediction, target = _pair(prediction, target)
    return (prediction - target).abs().mean(dim=(1, 2, 3)) / data_range * 100


def psnr(prediction: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, peak ``data_range``, MSE over pixels and channels.

    Identical images give ``inf``.
    """
    prediction, target = _pair(prediction, target)
    mse = (prediction - target).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range**2 / mse)


def ssim(prediction: Tensor, target: Tensor, data_range: float = 1.0, win_size: int = 7) -> Tensor:
    """Structural similarity as scikit-image's ``structural_similarity`` computes it by default.

    That is: a ``win_size``² uniform window, sample covariances (``N / (N − 1)``),
    ``K1 = 0.01``, ``K2 = 0.03``, the mean over the windows that lie entirely inside
    the image, and for colour images the mean over channels (``channel_axis``).
    """
    prediction, target = _pair(prediction, target)
    if min(prediction.shape[-2:]) < win_size:
        raise ValueError(
            f"SSIM needs images of at least {win_size}×{win_size}, got {tuple(prediction.shape)}"
        )
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n, c = prediction.shape[:2]
    x, y = prediction.reshape(n * c, 1, *prediction.shape[2:]), target.reshape(n * c, 1, *target.shape[2:])
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N·C, 5, H, W)
    means = F.avg_pool2d(stacked, win_size, stride=1)  # windows fully inside the image
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = means.unbind(1)
    samples = win_size**2
    covariance_norm = samples / (samples - 1)
    var_x = covariance_norm * (mean_xx - mean_x * mean_x)
    var_y = covariance_norm * (mean_yy - mean_y * mean_y)
    cov_xy = covariance_norm * (mean_xy - mean_x * mean_y)
    numerator = (2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    per_channel = (numerator / denominator).mean(dim=(1, 2))  # (N·C,)
    return per_channel.reshape(n, c).mean(dim=1)


def detail(prediction: Tensor, target: Tensor, hole: Tensor, erosion: int = DETAIL_EROSION) -> Tensor:
    """How much of the truth's detail a fill has inside the hole: 1.0 for the truth itself.

    The mean gradient magnitude of the luma (Rec. 601: 0.299 R + 0.587 G + 0.114 B;
    grey images as they are) over the hole eroded by ``erosion`` pixels, divided by
    the truth's mean there. Gradients are forward differences, ``√(∂x² + ∂y²)``, so a
    one-pixel checkerboard counts in full. The erosion keeps pixels whose
    ``(2·erosion + 1)²`` neighbourhood is all hole (outside the image counts as hole), so
    seams and halos at the hole's border do not count as detail. A blurry fill scores
    under 1, noise or artifacts can score over 1.

    Args:
        hole: ``(N, 1, H, W)``, nonzero = hole.

    Returns ``NaN`` for an image whose eroded hole is empty or whose truth is flat there.
    """
    prediction, target = _pair(prediction, target)
    region = _eroded_hole(hole, erosion)[..., :-1, :-1]  # where forward differences exist
    ours, truths = (_region_mean(_gradient_magnitude(image), region) for image in (prediction, target))
    return torch.where(truths > 0, ours / truths, torch.full_like(ours, float("nan")))  # NaN > 0 is False


#: Bands of hole pixels by distance from the nearest known pixel, ``(name, nearest, farthest)``
#: in pixels (Chebyshev distance: a hole pixel touching a known one, diagonally too, is at 1).
BORDER_BANDS = (("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-8", 4, 8), (">8", 9, None))


def border_band_l1(prediction: Tensor, target: Tensor, hole: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean absolute error (% of ``data_range``) in each of :data:`BORDER_BANDS`: ``(N, 5)``.

    Seams and halos along the hole's border show in the first bands; the deep inside of
    large holes in the last. Outside the image counts as hole (as for :func:`detail`).
    A band with no pixel in an image is ``NaN``.

    Args:
        hole: ``(N, 1, H, W)``, nonzero = hole.
    """
    prediction, target = _pair(prediction, target)
    error = (prediction - target).abs().mean(dim=1, keepdim=True) / data_range * 100  # (N, 1, H, W)
    bands = []
    for _, nearest, farthest in BORDER_BANDS:
        band = _eroded_hole(hole, nearest - 1)
        if farthest is not None:
            band = band - _eroded_hole(hole, farthest)
        bands.append(_region_mean(error, band))
    return torch.stack(bands, dim=1)


def _region_mean(values: Tensor, region: Tensor) -> Tensor:
    """Per image, the mean of ``values`` ``(N, 1, H, W)`` where ``region`` is 1: ``(N,)``,
    NaN for an image whose region is empty."""
    count = region.sum(dim=(1, 2, 3))
    means = (values * region).sum(dim=(1, 2, 3)) / count
    return torch.where(count > 0, means, torch.full_like(means, float("nan")))


def _eroded_hole(hole: Tensor, erosion: int) -> Tensor:
    """``(N, 1, H, W)`` float64, 1 where every pixel within ``erosion`` (Chebyshev) is hole."""
    known = (hole == 0).double()
    if erosion == 0:
        return 1 - known
    near_known = F.max_pool2d(known, 2 * erosion + 1, stride=1, padding=erosion)  # pads with -inf
    return 1 - near_known


def _gradient_magnitude(images: Tensor) -> Tensor:
    """``(N, C, H, W)`` → the luma's forward-difference gradient magnitude ``(N, 1, H−1, W−1)``."""
    if images.shape[1] == 3:
        luma = (images * images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    else:
        luma = images.mean(1, keepdim=True)
    dx = luma[..., :-1, 1:] - luma[..., :-1, :-1]
    dy = luma[..., 1:, :-1] - luma[..., :-1, :-1]
    return (dx.square() + dy.square()).sqrt()
