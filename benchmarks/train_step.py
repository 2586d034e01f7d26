"""Training-step speed: forward, the paper's full loss (VGG-16 to pool3), backward, Adam.

    python benchmarks/train_step.py --presets paper mini tiny --crop 256 --batch-size 6

Prints, per preset, the median step time over ``--steps`` steps (after one warm-up step)
and the images per second, on random images and generated masks so that data loading
does not count (see ``data_loading.py`` for that). VGG weights are random unless
``--vgg-weights`` is given: the cost is the same.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pconv.losses import InpaintingLoss, VGG16Features, load_vgg16_features
from pconv.masks import MaskGenerator, hole_to_mask
from pconv.models import PConvUNet


def step_times(preset: str, depth: int | None, crop: int, batch_size: int, steps: int, vgg) -> list[float]:
    torch.manual_seed(0)
    model = PConvUNet(preset, depth).train()
    criterion = InpaintingLoss(vgg)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    generator, rng = MaskGenerator(), np.random.default_rng(0)
    images = torch.rand(batch_size, 3, crop, crop)
    masks = torch.cat([hole_to_mask(generator(crop, crop, rng)) for _ in range(batch_size)])
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        output, _ = model(images * masks, masks)
        criterion(output, images, masks)["total"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first step allocates and warms up


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--presets", nargs="+", default=["paper", "small", "mini", "tiny"])
    parser.add_argument("--depth", type=int, help="U-Net levels (default: the preset's)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--vgg-weights", help="VGG weights file (default: random, same cost)")
    args = parser.parse_args()
    vgg = load_vgg16_features(args.vgg_weights) if args.vgg_weights else VGG16Features()
    print(f"{torch.get_num_threads()} threads, {args.crop}px crops, batch {args.batch_size}, full loss")
    print("| preset | parameters | step (s, median) | images/s |")
    print("|---|---|---|---|")
    for preset in args.presets:
        parameters = sum(p.numel() for p in PConvUNet(preset, args.depth).parameters())
        times = step_times(preset, args.depth, args.crop, args.batch_size, args.steps, vgg)
        median = statistics.median(times)
        print(f"| {preset} | {parameters:,} | {median:.2f} | {args.batch_size / median:.1f} |", flush=True)


if __name__ == "__main__":
    main()
