"""Why the `superres` preset is built as it is (issue #22; MODEL_CARD.md, "Super-resolution").

Trains variants of the preset with the recipe of `residual.toml`, each for the same
number of steps, changing one setting at a time:

- `no-base`: no bicubic base, the network predicts the colours themselves;
- `half-res`: every level halves the resolution (no full-resolution features);
- `wide`: twice the widths.

The preset itself is the first steps of the `residual.toml` run. Run from the repository
root with ../shared beside it; the runs go to runs/superres-ablations/NAME
(their configs and metrics are kept in train/superres/ablations/NAME):
    python train/superres/ablations.py [--steps 2000] [NAME ...]
The variants' presets exist only while this script runs: `pconv train --resume`,
`pconv upscale` and `pconv evaluate-upscaling` cannot load their runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from pconv.models.unet import get_preset, register_preset
from pconv.train import TrainConfig, train

RECIPE = Path(__file__).with_name("residual.toml")
PRESET = get_preset("superres")
VARIANTS = {
    "no-base": dataclasses.replace(PRESET, base="none"),
    "half-res": dataclasses.replace(PRESET, strides=(2,) * len(PRESET.strides)),
    "wide": dataclasses.replace(PRESET, widths=tuple(2 * width for width in PRESET.widths)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    unknown = set(args.names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    recipe = tomllib.loads(RECIPE.read_text())
    for name in args.names or VARIANTS:
        preset = f"superres-{name}"
        register_preset(preset, VARIANTS[name])
        settings = recipe | {
            "preset": preset, "steps": args.steps, "lr_decay_steps": 0, "val_every": 500,
            "checkpoint_every": args.steps,
            "out": f"runs/superres-ablations/{name}",
        }  # fmt: skip
        train(TrainConfig.from_dict(settings))


if __name__ == "__main__":
    main()
