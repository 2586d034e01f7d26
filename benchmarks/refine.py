"""Speed of fills refined with patch synthesis (``Inpainter(refine=True)``, ``--refine``).

    python benchmarks/refine.py [--image PHOTO] [--weights FILE] [--megapixels 12]

Times, in one run on this machine: a 512² image with a 40 % hole (a mask of the
generator's bucket 5) inpainted plainly and refined, best of ``--repeats``, and the
ratio; then one ``--megapixels`` photo-sized image (a synthetic texture unless
``--image`` is given, resized) with holes covering 5 % of it, the size of objects one
removes, refined through the window path. Prints the processor and thread count, so
that numbers from different machines are not compared unawares.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

import pconv
from pconv.devices import cpu_description
from pconv.masks import generate_mask, hole_ratio


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def photo(path: str | None, width: int, height: int) -> np.ndarray:
    """``path`` resized to ``width × height``, or a textured synthetic picture."""
    if path:
        return np.asarray(Image.open(path).convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:height, :width]
    base = np.stack([np.sin(x / 37.0) + np.cos(y / 23.0), np.sin((x + y) / 51.0), np.cos(x / 17.0)], axis=-1)
    pixels = 128 + 50 * base + rng.normal(0, 12, (height, width, 3))
    return pixels.clip(0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="a photo to use (default: a synthetic texture)")
    parser.add_argument("--weights", help="inpainting weights (default: the shipped model)")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{cpu_description()}, torch {torch.__version__}")

    plain, refining = pconv.Inpainter(args.weights, "cpu"), pconv.Inpainter(args.weights, "cpu", refine=True)
    image, hole = photo(args.image, 512, 512), generate_mask(512, 512, bucket=5, seed=1)
    plain_s = best_time(lambda: plain.inpaint(image, hole), args.repeats)
    refined_s = best_time(lambda: refining.inpaint(image, hole), args.repeats)
    print(
        f"512x512, {hole_ratio(hole):.0%} hole: plain {plain_s:.2f} s, refined {refined_s:.2f} s "
        f"(refinement {refined_s - plain_s:.2f} s; {refined_s / plain_s:.1f}x the plain time)"
    )

    width = round((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    large = photo(args.image, width, height)
    holes = np.zeros((height, width), bool)
    rng = np.random.default_rng(2)
    side = round((0.05 * width * height / 3) ** 0.5)  # three objects, 5 % of the photo in all
    for _ in range(3):
        top, left = rng.integers(0, height - side), rng.integers(0, width - side)
        holes[top : top + side, left : left + side] |= generate_mask(side, side, bucket=6, seed=int(top))
    plain_s = best_time(lambda: plain.inpaint(large, holes), 1)
    refined_s = best_time(lambda: refining.inpaint(large, holes), 1)
    print(
        f"{width}x{height} ({width * height / 1e6:.1f} MP), {hole_ratio(holes):.1%} hole in 3 regions: "
        f"plain {plain_s:.1f} s, refined {refined_s:.1f} s ({refined_s / plain_s:.1f}x)"
    )


if __name__ == "__main__":
    main()
