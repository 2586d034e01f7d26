"""Training-step speed: the old path against the new default, with and without VGG-16.

    python benchmarks/train_step.py --preset mini --crop 256 --batch-size 6
    python benchmarks/train_step.py --vgg-crops 0 64 96 128   # the window size, measured

One optimizer step is the network's forward, the loss, backward and Adam, on random
images and generated masks (data loading does not count; see ``data_loading.py``).
Rows: the pixel terms only (valid, hole, tv) and the paper's full loss (with VGG-16 to
pool3). Columns:

* **old**: what ``pconv train`` did before: fp32, contiguous U-Net, VGG (channels-last)
  on the whole image;
* **new**: today's default on this machine: ``training_compute("auto", ...)`` (bf16
  autocast where the CPU has native bf16, a channels-last U-Net with AVX-512) and VGG
  on ``--vgg-crop``-pixel windows around holes (``TrainConfig.vgg_crop``'s default).

Settings take turns step by step, so that the machine's drift hits them alike; times are
medians. The ratios at the bottom are the issue's targets: new full / old full (speed-up),
new full / new pixel (what VGG still costs). VGG weights are random unless
``--vgg-weights`` is given: the cost is the same.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pconv.devices import cpu_description, training_compute
from pconv.losses import InpaintingLoss, LossWeights, VGG16Features, load_vgg16_features
from pconv.masks import MaskGenerator, hole_to_mask
from pconv.models import PConvUNet
from pconv.train.config import DEFAULT_VGG_CROP


@dataclass(frozen=True)
class Setting:
    """One column × row: how a training step computes."""

    name: str
    dtype: torch.dtype
    memory_format: torch.memory_format
    vgg: bool
    vgg_crop: int


def make_step(setting: Setting, args: argparse.Namespace, vgg: VGG16Features) -> Callable[[], None]:
    """A closure running one optimizer step of ``setting`` on a fixed random batch."""
    torch.manual_seed(0)
    model = PConvUNet(args.preset, args.depth).train().to(memory_format=setting.memory_format)
    weights = LossWeights() if setting.vgg else LossWeights(perceptual=0, style=0)
    criterion = InpaintingLoss(vgg if setting.vgg else None, weights, setting.vgg_crop)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    generator, rng = MaskGenerator(), np.random.default_rng(0)
    images = torch.rand(args.batch_size, 3, args.crop, args.crop)
    masks = torch.cat([hole_to_mask(generator(args.crop, args.crop, rng)) for _ in range(args.batch_size)])
    images, masks = (t.contiguous(memory_format=setting.memory_format) for t in (images, masks))

    def step() -> None:
        with torch.autocast("cpu", dtype=setting.dtype, enabled=setting.dtype != torch.float32):
            output, _ = model(images * masks, masks)
            total = criterion(output, images, masks)["total"]
        total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def median_times(settings: list[Setting], args: argparse.Namespace, vgg: VGG16Features) -> dict[str, float]:
    steps = {setting.name: make_step(setting, args, vgg) for setting in settings}
    for step in steps.values():
        step()  # allocation and oneDNN's first-call setup
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--depth", type=int, default=7)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting (default 5)")
    parser.add_argument("--vgg-crop", type=int, default=DEFAULT_VGG_CROP, help="the new column's window")
    parser.add_argument("--vgg-crops", type=int, nargs="*", default=[],
                        help="also time the full loss with these windows (0 = whole image)")  # fmt: skip
    parser.add_argument("--vgg-weights", help="VGG weights file (default: random, same cost)")
    args = parser.parse_args()
    vgg = load_vgg16_features(args.vgg_weights) if args.vgg_weights else VGG16Features()
    new = training_compute("auto", torch.device("cpu"))
    old = (torch.float32, torch.contiguous_format)
    settings = [
        Setting("old pixel", *old, vgg=False, vgg_crop=0),
        Setting("old full", *old, vgg=True, vgg_crop=0),
        Setting("new pixel", new.dtype, new.memory_format, vgg=False, vgg_crop=args.vgg_crop),
        Setting("new full", new.dtype, new.memory_format, vgg=True, vgg_crop=args.vgg_crop),
    ]
    settings += [
        Setting(f"new full, window {crop}", new.dtype, new.memory_format, vgg=True, vgg_crop=crop)
        for crop in args.vgg_crops
    ]
    print(f"CPU: {cpu_description()}; torch {torch.__version__}")
    print(f"new default: {new.describe()}, VGG on {args.vgg_crop}px windows around holes")
    print(f"preset {args.preset} depth {args.depth}, {args.crop}px crops, batch {args.batch_size}, "
          f"median of {args.steps} steps\n")  # fmt: skip
    seconds = median_times(settings, args, vgg)
    rate = {name: args.batch_size / value for name, value in seconds.items()}
    print("| loss | old: fp32, contiguous, VGG on whole image | new default |")
    print("|---|--:|--:|")
    for row in ("pixel", "full"):
        print(f"| {row} terms | {rate[f'old {row}']:.1f} images/s | {rate[f'new {row}']:.1f} images/s |")
    for setting in settings[4:]:
        print(
            f"| full, VGG window {setting.vgg_crop or 'whole image'} | | {rate[setting.name]:.1f} images/s |"
        )
    print(f"\nfull loss, new / old: {seconds['old full'] / seconds['new full']:.2f}× faster")
    print(f"new default, full / pixel step time: {seconds['new full'] / seconds['new pixel']:.2f}×")


if __name__ == "__main__":
    main()
