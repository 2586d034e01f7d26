#!/usr/bin/env bash
# Trains the shipped super-resolution model exactly as it was trained (see MODEL_CARD.md,
# "Super-resolution"), exports it into the package and evaluates it against bicubic and
# Lanczos. Run from the repository root with ../shared beside it. The run starts from the
# default inpainting model as shipped when it was trained (48,000 images seen).
set -euo pipefail
pconv train --config train/superres/superres.toml
pconv export --weights runs/superres/best.safetensors -o pconv/assets/superres.safetensors --half
mkdir -p train/superres/run  # the run's resolved config and metrics (its checkpoint stays in runs/)
cp runs/superres/{config.json,metrics.jsonl} train/superres/run/
pconv evaluate-upscaling --images ../shared/data/val --report docs/superres_eval.md \
    --json docs/superres_eval.json --grid docs/superres_grid.png
