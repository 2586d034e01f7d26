"""Evaluation cases: which mask goes with which image, and how both are loaded.

A case is one image and one mask (255 = hole). Pairings are either

- **seeded**: every image gets one mask of each category (hole-ratio bucket × touches
  the border or not) present in the mask folder, drawn with ``numpy.random.default_rng(
  [seed, image index, bucket, border])`` — the same for the same seed, image list and
  mask folder; or
- **explicit**: a CSV file with the columns ``image,mask`` (paths relative to the image
  and mask folders).

Bucket and border come from each mask's pixels (:mod:`pconv.masks.folder`).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pconv.images import read_rgb
from pconv.masks import read_mask
from pconv.masks.folder import MaskInfo, describe_mask

__all__ = ["Case", "load_case", "paired_cases", "seeded_cases"]


@dataclass(frozen=True)
class Case:
    """One image and one mask, with the mask's measured category."""

    image: Path
    mask: Path
    bucket: int | None
    border: bool
    hole_ratio: float


def _case(image: Path, mask: MaskInfo) -> Case:
    return Case(image, mask.path, mask.bucket, mask.border, mask.hole_ratio)


def seeded_cases(images: list[Path], masks: list[MaskInfo], seed: int) -> list[Case]:
    """One case per image and mask category present in ``masks`` (see the module docstring)."""
    by_category: dict[tuple[int, bool], list[MaskInfo]] = defaultdict(list)
    for mask in masks:
        if mask.bucket is not None:  # ratios outside the six buckets are not benchmarked
            by_category[mask.bucket, mask.border].append(mask)
    if not by_category:
        raise ValueError("no mask has a hole ratio in the benchmark buckets (0.01, 0.6]")
    cases = []
    for index, image in enumerate(images):
        for bucket, border in sorted(by_category):
            candidates = by_category[bucket, border]
            rng = np.random.default_rng([seed, index, bucket, int(border)])
            cases.append(_case(image, candidates[int(rng.integers(len(candidates)))]))
    return cases


def paired_cases(pairs_file: str | Path, image_folder: str | Path, mask_folder: str | Path) -> list[Case]:
    """The cases listed in a CSV file with the columns ``image,mask``.

    Raises:
        ValueError: the file lacks those columns, or names a file that does not exist.
    """
    pairs_file, image_folder, mask_folder = Path(pairs_file), Path(image_folder), Path(mask_folder)
    with open(pairs_file, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or not {"image", "mask"} <= rows[0].keys():
        raise ValueError(f"{pairs_file} must be a CSV file with the columns image,mask and at least one row")
    cases = []
    for line, row in enumerate(rows, start=2):
        image, mask = image_folder / row["image"], mask_folder / row["mask"]
        for path in (image, mask):
            if not path.is_file():
                raise ValueError(f"{pairs_file}, line {line}: {path} does not exist")
        cases.append(_case(image, describe_mask(mask)))
    return cases


def load_case(case: Case, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The case's ground truth, uint8 ``(H, W, 3)`` RGB, and hole, bool ``(H, W)``.

    With ``size``, the image's shorter side is resized to ``size`` (Lanczos) and the
    centre ``size × size`` cropped; the mask must already be that size.

    Raises:
        ImageReadError, MaskError: a file cannot be read; MaskSizeError: sizes differ.
    """
    image = read_rgb(case.image)
    if size is not None:
        image = _resize_and_crop(image, size)
    return np.asarray(image), read_mask(case.mask, size=image.size)


def _resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))
