"""Sheets for a blind side-by-side of inpainting methods, with the key kept apart.

    python benchmarks/blind_sheets.py --method pconv-refine --against patchmatch pconv \\
        --images ../shared/data/val --masks ../shared/data/masks/nvidia_test \\
        --out sheets/ --key key.json [--cases 24 --buckets 4 5 6 --first-image 100]

Draws ``--cases`` masks of ``--buckets`` from the mask folder (the same number from
each bucket, seeded), pairs each with a validation photo (every 4th from
``--first-image``, resized and centre-cropped to 512² as ``pconv evaluate --size 512``
does) and writes, per case and per method of ``--against``, one sheet: the photo with
its hole in white, then fills A and B, ``--method``'s on a side drawn at random. The
sheets are numbered in a shuffled order, so that a case's sheets are not adjacent. The
key (which side is which method, and the photo, mask and bucket of each sheet) goes to
``--key``, which the judge must not see: give the judge the sheet folder only, ask
"which fill would you keep, A or B", and open the key once it has answered. Methods are
those of ``pconv evaluate --methods``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pconv.eval.cases import Case, load_case
from pconv.eval.inpainting import get_method
from pconv.files import list_image_files
from pconv.masks.folder import describe_mask

SIDE, GAP, HEADER = 512, 10, 24


def draw_masks(folder: str, buckets: list[int], per_bucket: int, rng: np.random.Generator) -> list:
    """``per_bucket`` masks of each bucket, drawn in a seeded order."""
    files = list_image_files(folder)
    drawn = {bucket: [] for bucket in buckets}
    for index in rng.permutation(len(files)):
        info = describe_mask(files[index])
        if info.bucket in drawn and len(drawn[info.bucket]) < per_bucket:
            drawn[info.bucket].append(info)
        if all(len(infos) == per_bucket for infos in drawn.values()):
            break
    return [info for bucket in buckets for info in drawn[bucket]]


def sheet(masked: np.ndarray, a: np.ndarray, b: np.ndarray) -> Image.Image:
    canvas = Image.new("RGB", (3 * SIDE + 2 * GAP, SIDE + HEADER), "white")
    for column, (label, pixels) in enumerate((("input (white = hole)", masked), ("A", a), ("B", b))):
        canvas.paste(Image.fromarray(pixels), (column * (SIDE + GAP), HEADER))
        ImageDraw.Draw(canvas).text((column * (SIDE + GAP) + 4, 6), label, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--against", nargs="+", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--out", required=True, help="folder of the sheets (the judge's)")
    parser.add_argument("--key", required=True, help="JSON key, kept from the judge")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--buckets", type=int, nargs="+", default=[4, 5, 6])
    parser.add_argument("--first-image", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    masks = draw_masks(args.masks, args.buckets, args.cases // len(args.buckets), rng)
    photos = list_image_files(args.images)
    methods = {name: get_method(name, "cpu") for name in [args.method, *args.against]}
    sheets = []
    for number, info in enumerate(masks):
        photo = photos[(args.first_image + 4 * number) % len(photos)]
        truth, hole = load_case(Case(photo, info.path, info.bucket, info.border, info.hole_ratio), SIDE)
        fills = {name: method([truth.copy()], [hole])[0] for name, method in methods.items()}
        masked = truth.copy()
        masked[hole] = 255
        for other in args.against:
            sides = [args.method, other]
            rng.shuffle(sides)
            record = {"A": sides[0], "B": sides[1], "image": photo.name, "mask": info.path.name}
            sheets.append((sheet(masked, fills[sides[0]], fills[sides[1]]), record | {"bucket": info.bucket}))
        print(f"case {number + 1}/{len(masks)}: {photo.name}, bucket {info.bucket}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = {}
    for position, index in enumerate(rng.permutation(len(sheets))):
        image, record = sheets[index]
        name = f"sheet_{position + 1:02d}.png"
        image.save(out / name)
        key[name] = record
    Path(args.key).write_text(json.dumps(key, indent=1))
    print(f"{len(sheets)} sheets in {out}; key in {args.key}")


if __name__ == "__main__":
    main()
