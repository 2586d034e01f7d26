"""The high-resolution strategy: which windows of a large image the network inpaints.

An image of at most ``max_pixels`` is inpainted whole. A larger one is never
downscaled and never seen whole; instead:

1. **Regions.** The image is divided into 32×32 px cells; cells that hold a hole pixel
   are grouped into regions, merging cells less than about ``context`` px apart.
2. **One window per region.** A region is inpainted in its bounding box grown by
   ``context`` px on every side (clipped to the image), at the image's own scale, and
   that window writes only its region's hole pixels.
3. **Tiles for regions too large for one window.** When a region's window exceeds
   ``max_pixels``, its bounding box is partitioned into square cores of side
   ``⌊√max_pixels⌋ − 2·context``; each core is inpainted in a window grown by
   ``context`` and writes the region's hole pixels inside the core.

So every hole pixel is written exactly once, with at least ``context`` px of image
around it in view (unless the image ends sooner), and the network never sees more
than ``max_pixels`` pixels: memory stays bounded for any image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Box", "Window", "WindowPlan", "check_window_settings", "plan_windows"]

#: Side of the cells holes are grouped by, in pixels.
CELL = 32


@dataclass(frozen=True)
class Box:
    """Pixel rectangle ``[top, bottom) × [left, right)``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def rows(self) -> slice:
        return slice(self.top, self.bottom)

    @property
    def columns(self) -> slice:
        return slice(self.left, self.right)

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)

    def grown(self, margin: int, height: int, width: int) -> Box:
        """This box grown by ``margin`` on every side, clipped to a ``height × width`` image."""
        return Box(
            max(0, self.top - margin),
            max(0, self.left - margin),
            min(height, self.bottom + margin),
            min(width, self.right + margin),
        )


@dataclass(frozen=True)
class Window:
    """One network pass: it sees ``view`` and writes hole pixels of ``region`` in ``core``.

    ``region`` is a label of :attr:`WindowPlan.labels`; None means every hole pixel.
    """

    view: Box
    core: Box
    region: int | None


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one image and the region label of every cell (0 = no hole)."""

    windows: list[Window]
    labels: np.ndarray | None  # (⌈H/CELL⌉, ⌈W/CELL⌉) int32; None when the image is one window

    def targets(self, window: Window, hole: np.ndarray) -> np.ndarray:
        """bool ``(h, w)`` over ``window.view``: the hole pixels this window writes."""
        view, core = window.view, window.core
        target = np.zeros((view.bottom - view.top, view.right - view.left), bool)
        inside = (slice(core.top - view.top, core.bottom - view.top),
                  slice(core.left - view.left, core.right - view.left))  # fmt: skip
        target[inside] = hole[core.rows, core.columns]
        if window.region is not None:
            cell_rows = np.arange(view.top, view.bottom) // CELL
            cell_columns = np.arange(view.left, view.right) // CELL
            target &= self.labels[np.ix_(cell_rows, cell_columns)] == window.region
        return target


def plan_windows(hole: np.ndarray, *, max_pixels: int, context: int) -> WindowPlan:
    """Plan the windows that inpaint ``hole`` (bool ``(H, W)``, True = hole).

    Raises:
        ValueError: settings :func:`check_window_settings` rejects.
    """
    core_side = check_window_settings(max_pixels, context)
    height, width = hole.shape
    if height * width <= max_pixels:
        whole = Box(0, 0, height, width)
        return WindowPlan([Window(whole, whole, None)], None)

    occupied = _occupied_cells(hole)
    labels = _label(_dilate(occupied, math.ceil(context / (2 * CELL)))) * occupied
    windows = []
    for region in range(1, int(labels.max()) + 1):
        cell_rows, cell_columns = np.nonzero(labels == region)  # every component holds a hole cell
        bounds = Box(
            int(cell_rows.min()) * CELL,
            int(cell_columns.min()) * CELL,
            min(height, (int(cell_rows.max()) + 1) * CELL),
            min(width, (int(cell_columns.max()) + 1) * CELL),
        )
        view = bounds.grown(context, height, width)
        if view.area <= max_pixels:
            windows.append(Window(view, bounds, region))
            continue
        for core in _tiles(bounds, core_side):
            if (labels[core.top // CELL : -(-core.bottom // CELL), core.left // CELL : -(-core.right // CELL)]
                    == region).any():  # fmt: skip
                windows.append(Window(core.grown(context, height, width), core, region))
    return WindowPlan(windows, labels)


def check_window_settings(max_pixels: int, context: int) -> int:
    """The side of a tile's core for these settings.

    Raises:
        ValueError: ``context`` is negative, or ``max_pixels`` leaves no room for a core
            inside ``context`` margins.
    """
    if context < 0:
        raise ValueError(f"context must be at least 0 px, got {context}")
    core_side = math.isqrt(max(max_pixels, 0)) - 2 * context
    if core_side < 2 * CELL:
        raise ValueError(
            f"max_pixels {max_pixels} is too small for a context of {context} px: it must be at least "
            f"(2·context + {2 * CELL})² = {(2 * context + 2 * CELL) ** 2}"
        )
    return core_side


def _occupied_cells(hole: np.ndarray) -> np.ndarray:
    """bool ``(⌈H/CELL⌉, ⌈W/CELL⌉)``: cells holding at least one hole pixel (no copy of ``hole``)."""
    rows = np.logical_or.reduceat(hole, np.arange(0, hole.shape[0], CELL), axis=0)
    return np.logical_or.reduceat(rows, np.arange(0, hole.shape[1], CELL), axis=1)


def _dilate(grid: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``grid`` by a ``(2·radius + 1)²`` square."""
    for axis in (0, 1):
        grown = grid.copy()
        for shift in range(1, radius + 1):
            ahead = [slice(None)] * 2
            behind = [slice(None)] * 2
            ahead[axis], behind[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(ahead)] |= grid[tuple(behind)]
            grown[tuple(behind)] |= grid[tuple(ahead)]
        grid = grown
    return grid


def _label(grid: np.ndarray) -> np.ndarray:
    """int32 labels 1..K of the 8-connected components of ``grid`` (0 outside)."""
    labels = np.zeros(grid.shape, np.int32)
    height, width = grid.shape
    count = 0
    for start in zip(*np.nonzero(grid), strict=True):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        stack = [start]
        while stack:
            row, column = stack.pop()
            for r in range(max(0, row - 1), min(height, row + 2)):
                for c in range(max(0, column - 1), min(width, column + 2)):
                    if grid[r, c] and not labels[r, c]:
                        labels[r, c] = count
                        stack.append((r, c))
    return labels


def _tiles(bounds: Box, side: int) -> list[Box]:
    """Squares of ``side`` px (smaller at the far edges) that partition ``bounds``."""
    return [
        Box(top, left, min(top + side, bounds.bottom), min(left + side, bounds.right))
        for top in range(bounds.top, bounds.bottom, side)
        for left in range(bounds.left, bounds.right, side)
    ]
