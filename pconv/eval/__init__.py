"""Evaluation: image-quality metrics, classical baselines and the per-bucket benchmark."""

from pconv.eval.metrics import l1_percent, psnr, ssim

__all__ = ["l1_percent", "psnr", "ssim"]
