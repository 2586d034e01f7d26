"""Super-resolution benchmark: pconv against bicubic and Lanczos interpolation.

Each ground-truth image is cropped to a multiple of the scale and downscaled with
antialiased bicubic interpolation (:func:`pconv.superres.downscale`, the usual
benchmark degradation); every method upscales that back, and the result is scored
against the ground truth on the 0–255 scale (8-bit results):

- ``psnr``, ``ssim``: on RGB (MSE over pixels and channels; SSIM as
  :func:`pconv.eval.ssim`, scikit-image's default 7×7 uniform window, mean over channels);
- ``psnr_y``, ``ssim_y``: on the luma Y of ITU-R BT.601 (studio swing, 16–235, as
  MATLAB's ``rgb2ycbcr``), the convention of super-resolution papers.

Both leave out a border of ``scale`` pixels on every side, as super-resolution papers
do, where interpolation has no neighbours. The SSIM window differs from those papers'
11×11 Gaussian, so compare SSIM values within this table, not with published ones.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pconv.eval.metrics import psnr, ssim
from pconv.images import read_rgb
from pconv.superres import downscale, modcrop

__all__ = [
    "METRICS", "UpscalingRecord", "crop_grid", "evaluate_upscaling", "get_upscaler", "markdown_table",
    "score", "summarize", "write_json",
]  # fmt: skip

#: Name and heading of each metric, in table order.
METRICS = (("psnr", "PSNR RGB"), ("ssim", "SSIM RGB"), ("psnr_y", "PSNR Y"), ("ssim_y", "SSIM Y"))
#: ITU-R BT.601 luma of [0, 255] RGB, studio swing (MATLAB's rgb2ycbcr).
_LUMA = np.array([65.481, 128.553, 24.966]) / 255

#: An upscaler: a low-resolution RGB image and the scale → uint8 ``(H, W, 3)``.
UpscaleMethod = Callable[[Image.Image, int], np.ndarray]


@dataclass(frozen=True)
class UpscalingRecord:
    """The scores of one method on one image at one scale."""

    image: str
    scale: int
    method: str
    psnr: float
    ssim: float
    psnr_y: float
    ssim_y: float


def get_upscaler(name: str, device: str | None = None) -> UpscaleMethod:
    """``bicubic``, ``lanczos`` (Pillow), ``pconv`` (the shipped model) or ``pconv:PATH``."""
    if name in ("bicubic", "lanczos"):
        resample = Image.Resampling.BICUBIC if name == "bicubic" else Image.Resampling.LANCZOS
        return lambda low, scale: np.asarray(low.resize((low.width * scale, low.height * scale), resample))
    if name == "pconv" or name.startswith("pconv:"):
        from pconv.inference import Upscaler

        upscaler = Upscaler(name.partition(":")[2] or None, device)
        return lambda low, scale: np.asarray(upscaler.upscale(low, scale))
    raise ValueError(f"unknown upscaling method {name!r}: use bicubic, lanczos, pconv or pconv:PATH")


def score(truth: np.ndarray, result: np.ndarray, scale: int) -> dict[str, float]:
    """The four metrics of uint8 ``(H, W, 3)`` images, leaving out a ``scale``-pixel border."""
    inner = (slice(scale, -scale), slice(scale, -scale))
    truth, result = truth[inner].astype(np.float64), result[inner].astype(np.float64)
    rgb = [torch.from_numpy(image).permute(2, 0, 1)[None] for image in (truth, result)]
    luma = [torch.from_numpy(16 + image @ _LUMA)[None, None] for image in (truth, result)]
    return {
        "psnr": psnr(rgb[1], rgb[0], 255).item(),
        "ssim": ssim(rgb[1], rgb[0], 255).item(),
        "psnr_y": psnr(luma[1], luma[0], 255).item(),
        "ssim_y": ssim(luma[1], luma[0], 255).item(),
    }


def evaluate_upscaling(
    images: Sequence[Path],
    methods: dict[str, UpscaleMethod],
    scales: Sequence[int],
    *,
    keep: Sequence[int] = (),
    progress: Callable[[], None] | None = None,
) -> tuple[list[UpscalingRecord], dict[tuple[int, int], dict[str, np.ndarray]]]:
    """Score every method on every image at every scale.

    Returns the records and, for the images whose indices are in ``keep``, each
    scale's results by method (and ``"truth"``), for :func:`crop_grid`.
    """
    records, kept = [], {}
    for index, path in enumerate(images):
        image = read_rgb(path)
        for scale in scales:
            truth, low = np.asarray(modcrop(image, scale)), downscale(image, scale)
            results = {name: method(low, scale) for name, method in methods.items()}
            for name, result in results.items():
                records.append(UpscalingRecord(str(path), scale, name, **score(truth, result, scale)))
            if index in keep:
                kept[index, scale] = results | {"truth": truth}
        if progress is not None:
            progress()
    return records, kept


def summarize(records: Sequence[UpscalingRecord]) -> dict[int, dict[str, dict[str, float]]]:
    """Means per scale and method: ``{scale: {method: {metric: mean}}}``."""
    groups = defaultdict(list)
    for record in records:
        groups[record.scale, record.method].append(record)
    summary: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
    for (scale, method), rows in sorted(groups.items()):
        summary[scale][method] = {
            name: float(np.mean([getattr(row, name) for row in rows])) for name, _ in METRICS
        }
    return dict(summary)


def markdown_table(summary: dict[int, dict[str, dict[str, float]]], *, images: int) -> str:
    """One row per scale and method; the best value of each scale in bold."""
    lines = [
        f"Mean over {images} images; PSNR in dB (peak 255); every metric leaves out a border of "
        "`scale` pixels.",
        "",
        "| scale | method | " + " | ".join(heading for _, heading in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for scale, methods in summary.items():
        best = {name: max(scores[name] for scores in methods.values()) for name, _ in METRICS}
        for method, scores in methods.items():
            cells = []
            for name, _ in METRICS:
                text = f"{scores[name]:.2f}" if name.startswith("psnr") else f"{scores[name]:.4f}"
                cells.append(f"**{text}**" if scores[name] == best[name] else text)
            lines.append(f"| ×{scale} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_json(summary: dict, records: Sequence[UpscalingRecord], path: str | Path, **context) -> None:
    """The means and every record, with ``context`` (command, images)."""
    data = context | {"means": summary, "records": [asdict(record) for record in records]}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def crop_grid(
    kept: dict[tuple[int, int], dict[str, np.ndarray]], columns: Sequence[str], size: int = 128
) -> np.ndarray:
    """uint8 image: one row per kept image and scale, a centred ``size``² crop of each column."""
    rows = []
    for results in kept.values():
        height, width = results["truth"].shape[:2]
        top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
        crops = [results[column][top : top + size, left : left + size] for column in columns]
        rows.append(
            np.concatenate(
                [np.pad(crop, ((2, 2), (2, 2), (0, 0)), constant_values=255) for crop in crops], axis=1
            )
        )
    return np.concatenate(rows, axis=0)
