"""Speed of ``pconv upscale``: a 512² image upscaled ×2 (and ×4), by network and by Pillow.

    python benchmarks/upscaling.py [--weights FILE ...] [--precision fp32 bf16] [--size 512] [--repeats 3]

Times, in one run on this machine, the median of ``--repeats`` upscales of a photo-like
image (smoothed noise) by the installed super-resolution model (or each of
``--weights``) at each ``--precision``, and by Pillow's bicubic, with the ratios to
bicubic. Prints the processor and thread count, so that numbers from different
machines are not compared unawares.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image, ImageFilter

from pconv.devices import cpu_description
from pconv.inference import Upscaler


def median_seconds(repeats: int, function, *args) -> float:
    """Median wall time of ``function(*args)`` after one warm-up call (first-call allocations)."""
    function(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", default=[None], metavar="FILE",
                        help="super-resolution weights files (default: the installed one)")  # fmt: skip
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"),
                        help="autocast of the networks (default fp32)")  # fmt: skip
    parser.add_argument("--size", type=int, default=512, help="side of the input image (default 512)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    noise = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    image = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.5))
    upscalers = {
        f"{weights or 'installed model'}, {precision}": Upscaler(weights, "cpu", precision=precision)
        for weights in args.weights
        for precision in args.precision
    }
    layout = next(iter(upscalers.values())).network.memory_format
    print(f"{cpu_description()}; {args.size}² input; the U-Net {layout}\n")
    print("| scale | method | seconds | × bicubic's time |")
    print("|---|---|---|---|")
    for scale in (2, 4):
        size = (args.size * scale, args.size * scale)
        bicubic = median_seconds(args.repeats, image.resize, size, Image.Resampling.BICUBIC)
        print(f"| ×{scale} | Pillow bicubic | {bicubic:.3f} | 1 |")
        for name, upscaler in upscalers.items():
            seconds = median_seconds(args.repeats, upscaler.upscale, image, scale)
            print(f"| ×{scale} | {name} | {seconds:.2f} | {seconds / bicubic:.0f} |")


if __name__ == "__main__":
    main()
