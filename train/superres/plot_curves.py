"""Plot super-resolution runs' validation PSNR at ×2 and ×4 against minutes of training.

Usage (from the repository root, needs matplotlib):

    python train/superres/plot_curves.py "superres preset=runs/superres-residual" \
        "paper's U-Net, fine-tuned=train/superres/paper_unet" -o docs/superres_curves.png \
        --reference "bicubic=29.20,23.73" --reference "Lanczos=29.60,23.89"

Minutes are summed from the logged throughput: each log window's images divided by its
images per second (a window's time includes the validations and checkpoints in it). A
window more than three times slower than the run's median (a run paused and resumed
later, or sharing the CPU for a while) is counted at the median instead, and the number
of such windows is printed. ``--reference NAME=X2,X4`` draws a method's PSNR on the same
validation crops.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def training_minutes(train: list[dict], batch: int) -> dict[int, float]:
    """Minutes of training at each logged step (see the module docstring)."""
    median = statistics.median(r["images_per_s"] for r in train)
    minutes, total, previous, slow = {}, 0.0, 0, 0
    for record in train:
        rate = record["images_per_s"]
        if rate < median / 3:
            rate, slow = median, slow + 1
        total += (record["step"] - previous) * batch / rate / 60
        minutes[record["step"]], previous = total, record["step"]
    if slow:
        print(f"{slow} slow log windows counted at the median throughput ({median:.0f} images/s)")
    return minutes


def validation_curve(run: Path) -> list[dict]:
    """The run's validation records, each with the ``minutes`` of training before it."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    batch = json.loads((run / "config.json").read_text())["batch_size"]
    minutes = training_minutes([r for r in records if r["kind"] == "train"], batch)
    validations = [r for r in records if r["kind"] == "val" and r["step"] in minutes]
    return [r | {"minutes": minutes[r["step"]]} for r in validations]


def plot(runs: dict[str, Path], output: Path, references: dict[str, tuple[float, float]]) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for label, run in runs.items():
        curve = validation_curve(run)
        for axis, scale in zip(axes, (2, 4), strict=True):
            axis.plot([r["minutes"] for r in curve], [r[f"psnr/x{scale}"] for r in curve], ".-", label=label)
    for name, values in references.items():
        for axis, value in zip(axes, values, strict=True):
            axis.axhline(value, color="black", linewidth=0.8, linestyle="--")
            axis.annotate(name, (0, value), xytext=(2, 2), textcoords="offset points", fontsize=8)
    for axis, scale in zip(axes, (2, 4), strict=True):
        axis.set(xlabel="minutes of training", ylabel="PSNR (dB)", title=f"Validation PSNR, ×{scale}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.savefig(output, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=DIR", help="run folders with metrics.jsonl")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--reference", action="append", default=[], metavar="NAME=X2,X4",
                        help="a method's PSNR on the same crops, a dashed line per scale")  # fmt: skip
    args = parser.parse_args()
    runs = {label: Path(folder) for label, folder in (item.rsplit("=", 1) for item in args.runs)}
    references = {}
    for item in args.reference:
        name, values = item.split("=")
        x2, x4 = map(float, values.split(","))
        references[name] = (x2, x4)
    plot(runs, args.output, references)


if __name__ == "__main__":
    main()
