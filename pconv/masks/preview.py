"""Contact sheets of mask folders: each mask as a thumbnail with its hole ratio."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from pconv.masks.folder import MaskInfo
from pconv.masks.io import MaskChannel, MaskConvention, read_mask

__all__ = ["contact_sheet"]

_LABEL_HEIGHT = 14


def contact_sheet(
    masks: Sequence[MaskInfo],
    *,
    columns: int = 8,
    thumbnail: int = 128,
    convention: MaskConvention = "white-hole",
    channel: MaskChannel = "auto",
) -> Image.Image:
    """A grid of thumbnails (white = hole), each labelled ``ratio b<bucket> border|inside``.

    ``convention`` and ``channel`` say how the files are read (:mod:`pconv.masks.io`).
    """
    if not masks:
        raise ValueError("no masks to show")
    rows = math.ceil(len(masks) / columns)
    cell_w, cell_h = thumbnail + 4, thumbnail + _LABEL_HEIGHT + 4
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (96, 96, 96))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for index, info in enumerate(masks):
        x, y = (index % columns) * cell_w + 2, (index // columns) * cell_h + 2
        hole = Image.fromarray(read_mask(info.path, convention, channel).astype("uint8") * 255)
        hole.thumbnail((thumbnail, thumbnail), Image.Resampling.NEAREST)
        sheet.paste(hole.convert("RGB"), (x, y))
        bucket = f"b{info.bucket}" if info.bucket is not None else "b-"
        label = f"{info.hole_ratio:.3f} {bucket} {'border' if info.border else 'inside'}"
        draw.text((x, y + thumbnail + 1), label, fill=(255, 255, 255), font=font)
    return sheet
