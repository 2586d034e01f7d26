#!/usr/bin/env bash
# Trains the shipped super-resolution model exactly as it was trained (see MODEL_CARD.md,
# "Super-resolution"): the `superres` preset from scratch with residual.toml, then exports
# it into the package and evaluates it against bicubic and Lanczos. Run from the
# repository root with ../shared beside it. The paper's form (the inpainting U-Net
# fine-tuned on the same canvases) is `pconv train --config train/superres/paper_unet.toml`.
set -euo pipefail
pconv train --config train/superres/residual.toml
pconv export --weights runs/superres-residual/best.safetensors -o pconv/assets/superres.safetensors --half
mkdir -p train/superres/residual  # the run's resolved config, metrics and last checkpoint
cp runs/superres-residual/{config.json,metrics.jsonl,checkpoint.pt} train/superres/residual/
pconv evaluate-upscaling --images ../shared/data/val --report docs/superres_eval.md \
    --json docs/superres_eval.json --grid docs/superres_grid.png
