"""The high-resolution plan: bounded windows that write every hole pixel exactly once."""

from __future__ import annotations

import numpy as np
import pytest

from pconv.inference.windows import CELL, check_window_settings, plan_windows


def writes_per_pixel(plan, hole):
    """How many windows write each pixel."""
    count = np.zeros(hole.shape, np.int32)
    for window in plan.windows:
        count[window.view.rows, window.view.columns] += plan.targets(window, hole)
    return count


def scattered_holes(height, width):
    hole = np.zeros((height, width), bool)
    hole[100:110, 40 : width - 40] = True  # a long scratch
    hole[600:700, 900:1000] = True  # a blob far from it
    hole[620:640, 1030:1040] = True  # a speck near the blob: merged with it
    hole[height - 5 :, :7] = True  # a corner at the image border
    return hole


def test_an_image_within_the_limit_is_one_window():
    hole = np.zeros((300, 200), bool)
    hole[10:20, 30:40] = True
    plan = plan_windows(hole, max_pixels=300 * 200, context=16)
    assert len(plan.windows) == 1 and plan.windows[0].view.area == 300 * 200
    np.testing.assert_array_equal(writes_per_pixel(plan, hole), hole)


@pytest.mark.parametrize(("max_pixels", "context"), [(512**2, 128), (300**2, 64), (160**2, 40)])
def test_every_hole_pixel_is_written_once_with_context_in_view(max_pixels, context):
    hole = scattered_holes(900, 1300)
    plan = plan_windows(hole, max_pixels=max_pixels, context=context)
    np.testing.assert_array_equal(writes_per_pixel(plan, hole), hole)  # exactly once, nothing else
    for window in plan.windows:
        view, core = window.view, window.core
        assert view.area <= max_pixels
        assert view.top <= core.top and core.bottom <= view.bottom
        assert view.left <= core.left and core.right <= view.right
        margins = (core.top - view.top, core.left - view.left)
        margins += (view.bottom - core.bottom, view.right - core.right)
        at_border = (view.top == 0, view.left == 0, view.bottom == 900, view.right == 1300)
        assert all(margin >= context or border for margin, border in zip(margins, at_border, strict=True))


def test_nearby_holes_share_a_window_and_distant_ones_do_not():
    hole = scattered_holes(900, 1300)
    plan = plan_windows(hole, max_pixels=1024**2, context=64)
    points = [(105, 500), (650, 950), (630, 1035)]  # scratch, blob, speck
    regions = {plan.labels[row // CELL, column // CELL] for row, column in points}
    assert len(regions) == 2  # blob and speck merged; the scratch apart
    assert len({window.region for window in plan.windows}) == int(plan.labels.max()) == 3


def test_a_region_larger_than_the_limit_is_tiled_at_full_scale():
    hole = np.zeros((1000, 1000), bool)
    hole[100:900, 100:900] = True
    plan = plan_windows(hole, max_pixels=256**2, context=32)
    assert len(plan.windows) > 1 and {window.region for window in plan.windows} == {1}
    assert all(window.view.area <= 256**2 for window in plan.windows)
    np.testing.assert_array_equal(writes_per_pixel(plan, hole), hole)


def test_a_limit_too_small_for_the_context_is_an_error():
    with pytest.raises(ValueError, match="too small for a context of 100 px"):
        plan_windows(np.zeros((10, 10), bool), max_pixels=200**2, context=100)
    with pytest.raises(ValueError, match="context must be at least 0"):
        check_window_settings(1024**2, -1)
    assert check_window_settings(1024**2, 256) == 512
