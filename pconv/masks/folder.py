"""Mask folders: per-file hole ratio, bucket and border, computed from the pixels, and
folders of generated masks written.

Used for the paper's published test masks (``../shared/data/masks/nvidia_test``,
255 = hole) and for any folder of masks written by :func:`write_generated_masks`
(``pconv masks generate``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pconv.files import list_image_files
from pconv.masks.buckets import BORDER_MARGIN, BUCKETS, bucket_of, hole_ratio, touches_border
from pconv.masks.generate import MaskGenerator
from pconv.masks.io import MaskChannel, MaskConvention, MaskError, read_mask, write_mask

__all__ = [
    "MaskInfo",
    "bucket_histogram",
    "describe_hole",
    "describe_mask",
    "format_histogram",
    "load_nvidia_masks",
    "scan_masks",
    "write_generated_masks",
]


@dataclass(frozen=True)
class MaskInfo:
    """One mask file: size, hole ratio, bucket (None outside (0.01, 0.6]) and border."""

    path: Path
    width: int
    height: int
    hole_ratio: float
    bucket: int | None
    border: bool


def describe_mask(
    path: Path,
    convention: MaskConvention = "white-hole",
    channel: MaskChannel = "auto",
    margin: int = BORDER_MARGIN,
) -> MaskInfo:
    """Read ``path`` (see :mod:`pconv.masks.io` for the conventions) and measure it."""
    return describe_hole(read_mask(path, convention, channel), path, margin)


def describe_hole(hole: np.ndarray, path: Path, margin: int = BORDER_MARGIN) -> MaskInfo:
    """Measure ``hole`` (bool ``(H, W)``, True = hole), the content of ``path``."""
    ratio = hole_ratio(hole)
    height, width = hole.shape
    return MaskInfo(path, width, height, ratio, bucket_of(ratio), touches_border(hole, margin))


def scan_masks(
    folder: str | Path,
    convention: MaskConvention = "white-hole",
    *,
    channel: MaskChannel = "auto",
    margin: int = BORDER_MARGIN,
    workers: int = 4,
) -> list[MaskInfo]:
    """Measure every mask image under ``folder`` (sorted by path).

    Raises:
        MaskError: the folder holds no image, or a file cannot be read (named).
    """
    paths = list_image_files(folder)
    if not paths:
        raise MaskError(f"no mask images found in {folder}")
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PNG decoding releases the GIL
        return list(pool.map(lambda path: describe_mask(path, convention, channel, margin), paths))


def load_nvidia_masks(folder: str | Path) -> list[MaskInfo]:
    """The paper's irregular test masks (255 = hole), with bucket and border from the pixels.

    The file index is not trusted: each mask's bucket comes from its hole ratio and
    its border flag from whether a hole pixel lies within 16 px of the edge.
    """
    return scan_masks(folder, "white-hole")


def bucket_histogram(masks: Iterable[MaskInfo]) -> Counter[tuple[int | None, bool]]:
    """Number of masks per ``(bucket, border)``; bucket None counts out-of-range ratios."""
    return Counter((mask.bucket, mask.border) for mask in masks)


def format_histogram(histogram: Counter[tuple[int | None, bool]]) -> str:
    """A Markdown table of a :func:`bucket_histogram`: one row per bucket, then totals."""
    rows = ["| bucket | hole ratio | no border | border | total |", "|---|---|---|---|---|"]

    def row(bucket: str, label: str, inside: int, touching: int) -> str:
        return f"| {bucket} | {label} | {inside} | {touching} | {inside + touching} |"

    for bucket, (low, high) in BUCKETS.items():
        rows.append(
            row(
                str(bucket), f"({low:.2f}, {high:.2f}]", histogram[(bucket, False)], histogram[(bucket, True)]
            )
        )
    if histogram[(None, False)] or histogram[(None, True)]:
        rows.append(row("-", "outside (0.01, 0.60]", histogram[(None, False)], histogram[(None, True)]))
    inside = sum(count for (_, border), count in histogram.items() if not border)
    touching = sum(count for (_, border), count in histogram.items() if border)
    rows.append(row("all", "", inside, touching))
    return "\n".join(rows)


def write_generated_masks(
    folder: str | Path,
    count: int,
    size: tuple[int, int],
    *,
    seed: int = 0,
    bucket: int | None = None,
    border: bool | None = None,
    overwrite: bool = False,
) -> list[MaskInfo]:
    """Write ``count`` masks of the default :class:`MaskGenerator` (``size`` is ``(width,
    height)``) as ``folder/00000.png``, … (255 = hole); mask ``i`` depends on ``(seed,
    i)`` only. ``bucket`` and ``border`` constrain every mask (None: drawn at random).

    Raises:
        FileExistsError: some of the files exist (without ``overwrite``); nothing is written.
    """
    folder = Path(folder)
    paths = [folder / f"{index:05d}.png" for index in range(count)]
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{len(existing)} files already exist (first: {existing[0]}); "
            "overwrite=True (--overwrite) replaces them"
        )
    folder.mkdir(parents=True, exist_ok=True)
    generator, written = MaskGenerator(), []
    width, height = size
    for index, path in enumerate(paths):
        hole = generator(height, width, np.random.default_rng([seed, index]), bucket=bucket, border=border)
        write_mask(path, hole)
        written.append(describe_hole(hole, path))
    return written
