"""Evaluation: image-quality metrics, classical baselines, and scoring inpainting and upscaling."""

from pconv.eval.metrics import BORDER_BANDS, border_band_l1, detail, l1_percent, psnr, ssim

__all__ = ["BORDER_BANDS", "border_band_l1", "detail", "l1_percent", "psnr", "ssim"]
