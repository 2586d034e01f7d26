"""Inference speed and memory: a 512² image, and large images through the window path.

    python benchmarks/inference.py [--preset paper] [--weights FILE] [--megapixels 12 50]

For each large size, a synthetic photo with scratches and blobs is inpainted through
``pconv.Inpainter``; the script prints the windows, the pixels the network saw, the
wall time and how far the process's memory (RSS, sampled) rose above its level before
the call. The part of that rise that scales with the image is the result (a copy of
the image, 3 bytes per pixel) and the hole mask (1 byte per pixel); the network's share
is bounded by ``--max-pixels``. Random weights give the same timings as trained ones.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import pconv
from pconv.inference.windows import plan_windows
from pconv.weights import save_weights


def rss_mb() -> float:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_growth_mb(function, *args):
    """``function(*args)`` and the peak of RSS during the call above RSS before it (sampled every 5 ms)."""
    before, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = function(*args)
    finally:
        done.set()
        sampler.join()
    return result, max(peak[0], rss_mb()) - before


def synthetic_case(megapixels: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 3:2 uint8 photo of smooth noise and a hole of scratches and blobs (True = hole)."""
    width = int((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(width / 1.5)
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (height // 64 + 1, width // 64 + 1, 3), dtype=np.uint8))
    image = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))
    mask = Image.new("L", (width, height))
    draw = ImageDraw.Draw(mask)
    for _ in range(6):  # long thin scratches
        points = rng.uniform(0, 1, (4, 2)) * (width, height)
        draw.line([tuple(p) for p in points], fill=255, width=int(rng.integers(4, 16)))
    for _ in range(4):  # object-sized blobs
        x, y = rng.uniform(0, 1, 2) * (width, height)
        radius = rng.uniform(40, 200)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return image, np.asarray(mask) > 127


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--weights", help="a weights file (default: random weights of --preset)")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[12.0, 50.0])
    parser.add_argument("--max-pixels", type=int, default=pconv.inference.DEFAULT_MAX_PIXELS)
    parser.add_argument("--context", type=int, default=pconv.inference.DEFAULT_CONTEXT)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights
        if weights is None:
            torch.manual_seed(0)
            weights = save_weights(pconv.PConvUNet(args.preset).eval(), Path(folder) / "random.safetensors")
        inpainter = pconv.Inpainter(weights, max_pixels=args.max_pixels, context=args.context)
    print(f"{inpainter!r}, {torch.get_num_threads()} threads")
    print(f"max_pixels {args.max_pixels}, context {args.context}")

    image, hole = synthetic_case(512 * 512 / 1e6)
    image, hole = image[:512, :512], hole[:512, :512]
    inpainter.inpaint(image, hole)  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        inpainter.inpaint(image, hole)
        times.append(time.perf_counter() - start)
    print(f"512×512 whole image: median {np.median(times):.2f} s over 3 runs")

    print("| image | megapixels | hole | windows | pixels seen by the network | time | peak RSS growth |")
    print("|---|---|---|---|---|---|---|")
    for megapixels in args.megapixels:
        image, hole = synthetic_case(megapixels)
        plan = plan_windows(hole, max_pixels=args.max_pixels, context=args.context)
        seen = sum(window.view.area for window in plan.windows)
        start = time.perf_counter()
        result, growth = peak_growth_mb(inpainter.inpaint, image, hole)
        elapsed = time.perf_counter() - start
        assert np.array_equal(result[~hole], image[~hole])
        print(
            f"| {image.shape[1]}×{image.shape[0]} | {image.size / 3e6:.1f} | {hole.mean():.1%} | "
            f"{len(plan.windows)} | {seen / 1e6:.1f} M | {elapsed:.1f} s | {growth:.0f} MB |"
        )
        del image, hole, result


if __name__ == "__main__":
    main()
