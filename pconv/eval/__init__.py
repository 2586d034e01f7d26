"""Evaluation: image-quality metrics."""

from pconv.eval.metrics import l1_percent, psnr, ssim

__all__ = ["l1_percent", "psnr", "ssim"]
