"""Plot the default model's training and validation curves from its runs' metrics.jsonl.

Usage (from the repository root, needs matplotlib):

    python train/default/plot_curves.py runs/default-stage1 runs/default-stage2 \
        -o docs/default_model_curves.png

Left: the weighted training loss and its hole term (moving averages over each log
interval), middle: validation PSNR of the composite, right (for runs that log it): the
detail in holes, all against images seen by the model. A vertical line marks where each
later run starts; ``--reference telea=24.43`` draws a method's PSNR on the same
validation crops, and ``--detail-reference telea=0.322`` its detail.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_records(run: Path) -> tuple[list[dict], list[dict]]:
    """The run's training and validation records, each validation record given the
    ``images_seen`` of the training record logged at its step."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    train = [r for r in records if r["kind"] == "train"]
    seen_at = {r["step"]: r["images_seen"] for r in train}
    val = [r for r in records if r["kind"] == "val" and r["step"] in seen_at]
    val = [r | {"images_seen": seen_at[r["step"]]} for r in val]
    return train, val


def plot(
    runs: list[Path], output: Path, references: dict[str, float], detail_references: dict[str, float]
) -> None:
    figure, (loss_axis, psnr_axis, detail_axis) = plt.subplots(1, 3, figsize=(16, 4), constrained_layout=True)
    for stage, run in enumerate(runs, start=1):
        train, val = read_records(run)
        seen = [r["images_seen"] for r in train]
        loss_axis.plot(seen, [r["total"] for r in train], label=f"stage {stage}: total (weighted)")
        loss_axis.plot(seen, [6 * r["hole"] for r in train], label=f"stage {stage}: 6 × hole")
        label = f"stage {stage} ({run.name})"
        psnr_axis.plot([r["images_seen"] for r in val], [r["psnr"] for r in val], "o-", label=label)
        detailed = [r for r in val if "detail" in r]
        detail_axis.plot(
            [r["images_seen"] for r in detailed], [r["detail"] for r in detailed], "o-", label=label
        )
        if stage > 1:
            for axis in (loss_axis, psnr_axis, detail_axis):
                axis.axvline(seen[0], color="grey", linewidth=0.8, linestyle=":")
    for axis, lines in ((psnr_axis, references), (detail_axis, detail_references)):
        for name, value in lines.items():
            axis.axhline(value, color="black", linewidth=0.8, linestyle="--", label=name)
    loss_axis.set(xlabel="images seen", ylabel="training loss", yscale="log", title="Training loss")
    psnr_axis.set(xlabel="images seen", ylabel="PSNR (dB)", title="Validation PSNR (composite)")
    detail_axis.set(xlabel="images seen", ylabel="detail (truth = 1)", title="Validation detail in holes")
    for axis in (loss_axis, psnr_axis, detail_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.savefig(output, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, stage 1 first")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--reference", action="append", default=[], metavar="NAME=PSNR",
                        help="a horizontal line on the PSNR plot, e.g. telea=24.43")  # fmt: skip
    parser.add_argument("--detail-reference", action="append", default=[], metavar="NAME=DETAIL",
                        help="a horizontal line on the detail plot, e.g. telea=0.322")  # fmt: skip
    args = parser.parse_args()
    references, details = ({name: float(value) for name, value in (item.split("=") for item in given)}
                           for given in (args.reference, args.detail_reference))  # fmt: skip
    plot(args.runs, args.output, references, details)


if __name__ == "__main__":
    main()
