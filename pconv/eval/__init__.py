"""Evaluation: image-quality metrics, classical baselines and the per-bucket benchmark."""

from pconv.eval.metrics import detail, l1_percent, psnr, ssim

__all__ = ["detail", "l1_percent", "psnr", "ssim"]
