"""Random irregular hole masks: brush strokes, curved lines, ellipses and blobs.

A free-form substitute for the paper's occlusion masks (SPEC §5). Masks are drawn
for a requested hole-ratio bucket (1–6) and border variant, reproducibly from a
``numpy.random.Generator``. Outputs are ``hole`` arrays: bool ``(H, W)``, True = hole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from pconv.masks.buckets import BORDER_MARGIN, BUCKETS, hole_ratio, touches_border

__all__ = ["MaskGenerator", "generate_mask"]

_SHAPES = ("stroke", "curve", "ellipse", "blob")
_MAX_REJECTED_SHAPES = 100  # shapes redrawn before a mask is restarted
_MAX_RESTARTS = 50


class MaskGenerator:
    """Samples hole masks from a mixture of shapes, for a bucket and border variant.

    Args:
        bucket_weights: relative frequency of buckets 1–6 when none is requested
            (uniform by default: the training distribution covers every bucket).
        border_probability: chance that a mask touches the border when the
            variant is not requested.
        shape_weights: relative frequency of ``stroke``, ``curve``, ``ellipse``, ``blob``.
        margin: the border band in pixels (16, as in the paper's test set).

    Call with ``(height, width, rng)`` and optionally ``bucket=`` and ``border=``;
    returns a bool ``(height, width)`` array, True = hole, whose hole ratio lies in
    the bucket and which touches the border band exactly when ``border`` is True.
    """

    def __init__(
        self,
        *,
        bucket_weights: Sequence[float] = (1, 1, 1, 1, 1, 1),
        border_probability: float = 0.5,
        shape_weights: Sequence[float] = (3, 1, 1, 2),
        margin: int = BORDER_MARGIN,
    ) -> None:
        if len(bucket_weights) != len(BUCKETS) or min(bucket_weights) < 0 or sum(bucket_weights) <= 0:
            raise ValueError(f"bucket_weights needs {len(BUCKETS)} non-negative weights, not all zero")
        if len(shape_weights) != len(_SHAPES) or min(shape_weights) < 0 or sum(shape_weights) <= 0:
            raise ValueError(f"shape_weights needs {len(_SHAPES)} non-negative weights for {_SHAPES}")
        if not 0 <= border_probability <= 1:
            raise ValueError(f"border_probability must be in [0, 1], got {border_probability}")
        self.bucket_probabilities = np.asarray(bucket_weights, float) / sum(bucket_weights)
        self.shape_probabilities = np.asarray(shape_weights, float) / sum(shape_weights)
        self.border_probability = border_probability
        self.margin = margin

    def __call__(
        self,
        height: int,
        width: int,
        rng: np.random.Generator,
        *,
        bucket: int | None = None,
        border: bool | None = None,
    ) -> np.ndarray:
        if bucket is None:
            bucket = int(rng.choice(list(BUCKETS), p=self.bucket_probabilities))
        if bucket not in BUCKETS:
            raise ValueError(f"bucket must be one of {list(BUCKETS)}, got {bucket}")
        if min(height, width) < 8:
            raise ValueError(f"masks must be at least 8×8, got {height}×{width}")
        if border is None:  # small crops cannot hold large holes inside the band: use border then
            inside_fits = self._fits_inside(height, width, bucket)
            border = bool(rng.random() < self.border_probability) or not inside_fits
        elif not border and not self._fits_inside(height, width, bucket):
            raise ValueError(
                f"a {height}×{width} mask has too little room inside its {self.margin}px border band "
                f"for bucket {bucket} without border; use a larger size or allow the border"
            )
        low, high = BUCKETS[bucket]
        for _ in range(_MAX_RESTARTS):
            hole = self._draw(height, width, rng, rng.uniform(low, high), high, border)
            if (
                hole is not None
                and low < hole_ratio(hole) <= high
                and touches_border(hole, self.margin) == border
            ):
                return hole
        raise RuntimeError(f"could not draw a {height}×{width} mask for bucket {bucket}, border={border}")

    def _fits_inside(self, height: int, width: int, bucket: int) -> bool:
        """Whether the area inside the border band leaves room for the bucket's holes."""
        interior = max(height - 2 * self.margin, 0) * max(width - 2 * self.margin, 0) / (height * width)
        return interior > BUCKETS[bucket][0] * 1.25

    def _draw(
        self, height: int, width: int, rng: np.random.Generator, target: float, high: float, border: bool
    ) -> np.ndarray | None:
        """Add shapes until the hole ratio reaches ``target`` without passing ``high``."""
        canvas = Image.new("L", (width, height), 0)
        hole = np.zeros((height, width), bool)
        side = min(height, width)
        rejected = 0
        first = True
        while hole_ratio(hole) < target:
            need = target - hole_ratio(hole)
            trial = canvas.copy()
            shape = _SHAPES[rng.choice(len(_SHAPES), p=self.shape_probabilities)]
            # Shapes shrink as the target nears, so they rarely overshoot it.
            size = side * float(np.clip(np.sqrt(need) * rng.uniform(0.4, 1.0), 0.03, 0.7))
            if border:
                anchor = (
                    _edge_point(height, width, rng, self.margin) if first else _point(height, width, rng, 0)
                )
            else:  # keep shapes clear of the band so that few are redrawn
                anchor = _point(height, width, rng, self.margin + size * 0.3)
            _DRAW[shape](ImageDraw.Draw(trial), rng, size, anchor)
            candidate = np.asarray(trial) > 127
            # Shapes that overshoot, or enter the border band of a no-border mask, are redrawn.
            if hole_ratio(candidate) > high or (not border and touches_border(candidate, self.margin)):
                rejected += 1
                if rejected > _MAX_REJECTED_SHAPES:
                    return None
                continue
            canvas, hole, first = trial, candidate, False
        return hole


def generate_mask(
    height: int, width: int, *, bucket: int | None = None, border: bool | None = None, seed: int = 0
) -> np.ndarray:
    """One mask from the default :class:`MaskGenerator`, seeded: bool ``(H, W)``, True = hole."""
    return MaskGenerator()(height, width, np.random.default_rng(seed), bucket=bucket, border=border)


def _edge_point(height: int, width: int, rng: np.random.Generator, margin: int) -> tuple[float, float]:
    """A random ``(x, y)`` inside the border band, so a shape started there touches it."""
    depth = rng.uniform(0, margin / 2)
    along = rng.uniform(0, 1)
    return [
        (depth, along * height),
        (width - 1 - depth, along * height),
        (along * width, depth),
        (along * width, height - 1 - depth),
    ][rng.integers(4)]


def _point(height: int, width: int, rng: np.random.Generator, inset: float) -> tuple[float, float]:
    """A random ``(x, y)`` at least ``inset`` pixels from the edges (when there is room)."""
    inset_x, inset_y = min(inset, (width - 1) / 2), min(inset, (height - 1) / 2)
    return rng.uniform(inset_x, width - 1 - inset_x), rng.uniform(inset_y, height - 1 - inset_y)


def _draw_stroke(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: float, anchor: tuple[float, float]
) -> None:
    """A thick brush stroke: a random walk with smoothly turning direction and round joints."""
    x, y = anchor
    brush = max(2.0, size * rng.uniform(0.15, 0.4))
    angle, points = rng.uniform(0, 2 * np.pi), [(x, y)]
    for _ in range(rng.integers(3, 10)):
        angle += rng.normal(0, 0.8)
        step = size * rng.uniform(0.3, 0.8)
        x, y = x + step * np.cos(angle), y + step * np.sin(angle)
        points.append((x, y))
    draw.line(points, fill=255, width=round(brush), joint="curve")
    for px, py in (points[0], points[-1]):
        draw.ellipse((px - brush / 2, py - brush / 2, px + brush / 2, py + brush / 2), fill=255)


def _draw_curve(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: float, anchor: tuple[float, float]
) -> None:
    """A thin curved line: a quadratic Bézier curve, like a scratch or a wire."""
    p0 = np.array(anchor)
    p1 = p0 + rng.normal(0, size, 2)
    p2 = p0 + rng.normal(0, size * 1.5, 2)
    t = np.linspace(0, 1, 48)[:, None]
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    thickness = max(1, round(size * rng.uniform(0.02, 0.08)))
    draw.line([tuple(p) for p in curve], fill=255, width=thickness, joint="curve")


def _draw_ellipse(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: float, anchor: tuple[float, float]
) -> None:
    """A filled ellipse at a random angle."""
    cx, cy = anchor
    a, b = size * rng.uniform(0.3, 0.8), size * rng.uniform(0.1, 0.5)
    theta, phi = np.linspace(0, 2 * np.pi, 40, endpoint=False), rng.uniform(0, np.pi)
    xs = cx + a * np.cos(theta) * np.cos(phi) - b * np.sin(theta) * np.sin(phi)
    ys = cy + a * np.cos(theta) * np.sin(phi) + b * np.sin(theta) * np.cos(phi)
    draw.polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255)


def _draw_blob(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: float, anchor: tuple[float, float]
) -> None:
    """An irregular blob: a cluster of overlapping discs of varied size."""
    cx, cy = anchor
    for _ in range(rng.integers(4, 12)):
        r = size * rng.uniform(0.08, 0.3)
        x, y = cx + rng.normal(0, size * 0.25), cy + rng.normal(0, size * 0.25)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


_DRAW = {"stroke": _draw_stroke, "curve": _draw_curve, "ellipse": _draw_ellipse, "blob": _draw_blob}
