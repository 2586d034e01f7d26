"""Training-data throughput: images per second out of a DataLoader.

    python benchmarks/data_loading.py ../shared/data/train --crop 256 --workers 0 2

Prints, for each worker count, the rate of (image, mask) pairs with generated masks
(and with ``--masks DIR``, masks read from files and augmented).
"""

from __future__ import annotations

import argparse
import time

import torch

from pconv.data import InpaintingDataset


def images_per_second(dataset: InpaintingDataset, workers: int, batch_size: int, batches: int) -> float:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, shuffle=True, persistent_workers=workers > 0
    )
    iterator = iter(loader)
    next(iterator)  # start-up (worker processes, first files) is not throughput
    start, seen = time.perf_counter(), 0
    for _, (images, _) in zip(range(batches), iterator, strict=False):
        seen += images.shape[0]
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images")
    parser.add_argument("--masks", help="mask folder (default: generated masks)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    dataset = InpaintingDataset(args.images, crop_size=args.crop, masks=args.masks)
    source = f"masks from {args.masks}" if args.masks else "generated masks"
    print(f"{len(dataset)} images, {args.crop}px crops, {source}, {torch.get_num_threads()} CPU threads")
    for workers in args.workers:
        rate = images_per_second(dataset, workers, args.batch_size, args.batches)
        print(f"workers {workers:>2}: {rate:7.1f} images/s")


if __name__ == "__main__":
    main()
