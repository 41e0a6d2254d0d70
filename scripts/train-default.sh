#!/usr/bin/env bash
# Trains the shipped default world model (assets/model/default.safetensors) on
# procedurally generated districts only (seeds 1-12; real Seoul stays unseen).
# About 10 minutes on 2 cores (8 epochs of behaviour cloning, then 4 rounds of rollout
# fine-tuning); see assets/model/MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p swm_cli
mkdir -p assets/model
target/release/swm train --procgen-seeds 1..12 --vehicles 120 --pedestrians 80 --duration 90 \
  --stride 4 --epochs 8 --seed 1 --rollout-rounds 4 --round-scenarios 256 \
  -o assets/model/default.safetensors "$@"
