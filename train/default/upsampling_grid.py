"""How much of a model's fill follows the decoder's upsampling grid (MODEL_CARD.md, round 3).

    python train/default/upsampling_grid.py WEIGHTS [WEIGHTS ...] [--cases 8]

For large holes (buckets 4–6 of the NVIDIA test masks, no border) on BSDS validation
photos at 512, the mean absolute luma step between horizontal neighbours ``x → x+1``
inside the hole eroded by 4 px, by ``x mod 4``. A photo's steps do not depend on the
phase; a decoder that enlarges features by nearest neighbour (×2 per level) makes them
periodic with period 4. Prints the four means, their max/min ratio and the hole's PSNR
for every weights file (fills without border blending) and for the truth. Run from the
repository root with ../shared beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_erosion

from pconv import Inpainter
from pconv.eval.cases import Case, load_case
from pconv.masks.folder import describe_mask

SHARED = Path("../shared/data")


def large_hole_cases(count: int, seed: int = 5) -> list[Case]:
    masks = sorted((SHARED / "masks/nvidia_test").glob("*.png"))
    photos = sorted((SHARED / "val").glob("*"))
    cases = []
    for index in np.random.default_rng(seed).permutation(len(masks)):
        info = describe_mask(masks[index])
        if info.bucket >= 4 and not info.border:
            photo = photos[60 + 5 * len(cases)]
            cases.append(Case(photo, info.path, info.bucket, info.border, info.hole_ratio))
        if len(cases) == count:
            return cases
    raise ValueError(f"fewer than {count} large-hole masks")


def steps_by_phase(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean |luma(x+1) − luma(x)| over ``region``, for ``x mod 4`` = 0, 1, 2, 3."""
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    steps = np.abs(np.diff(luma, axis=1))
    inside = region[:, :-1] & region[:, 1:]
    phase = np.arange(steps.shape[1]) % 4
    return np.array([steps[:, phase == p][inside[:, phase == p]].mean() for p in range(4)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--cases", type=int, default=8)
    args = parser.parse_args()
    inpainters = {name: Inpainter(name, "cpu", blend=False) for name in args.weights}
    steps = {name: [] for name in [*inpainters, "truth"]}
    psnr = {name: [] for name in inpainters}
    for case in large_hole_cases(args.cases):
        truth, hole = load_case(case, 512)
        inner = binary_erosion(hole, iterations=4)
        steps["truth"].append(steps_by_phase(truth, inner))
        for name, inpainter in inpainters.items():
            fill = inpainter.inpaint(truth.copy(), hole)
            steps[name].append(steps_by_phase(fill, inner))
            error = ((fill.astype(np.float64) - truth)[hole] ** 2).mean()
            psnr[name].append(10 * np.log10(255**2 / error))
    print("| weights | step by x mod 4 (0, 1, 2, 3) | max/min | hole PSNR (dB) |\n|---|---|---|---|")
    for name, values in steps.items():
        mean = np.mean(values, axis=0)
        hole_psnr = f"{np.mean(psnr[name]):.2f}" if name in psnr else "—"
        phases = ", ".join(f"{v:.2f}" for v in mean)
        print(f"| {name} | {phases} | {mean.max() / mean.min():.2f} | {hole_psnr} |")


if __name__ == "__main__":
    main()
