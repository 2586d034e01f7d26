#!/usr/bin/env bash
# Trains the shipped default model from scratch, exactly as it was trained (see
# MODEL_CARD.md), then exports it into the package. Run from the repository root with
# ../shared (the training photos, validation photos, NVIDIA masks and VGG weights) beside it.
set -euo pipefail
pconv train --config train/default/stage1.toml
pconv train --config train/default/stage2.toml
pconv export --weights runs/default-stage2/best.safetensors -o pconv/assets/default.safetensors --half
for stage in 1 2; do  # the last full checkpoints, kept in the repository for the next round
    mkdir -p train/default/stage$stage
    cp runs/default-stage$stage/{checkpoint.pt,config.json,metrics.jsonl} train/default/stage$stage/
done
python train/default/plot_curves.py runs/default-stage1 runs/default-stage2 -o docs/default_model_curves.png \
    --reference "Telea, same crops=24.43"
