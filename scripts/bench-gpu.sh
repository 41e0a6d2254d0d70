#!/usr/bin/env bash
# GPU engine benchmark: network-forward agent-steps/s on the best adapter (a real GPU, else
# Mesa's lavapipe) vs swm_model's single-threaded CPU forward on the same batch, plus the
# forward fused with sampling and the kinematic step, and per-layer times. See BENCHMARKS.md.
# Then whole closed-loop rollouts (features, network, sampling, masks, kinematics on the device)
# against the CPU backend on dense district scenarios, across sample counts (ROLLOUT_SAMPLES;
# the CPU runs only up to CPU_MAX_SAMPLES).
#   scripts/bench-gpu.sh [MODEL] [BATCHES]      e.g. scripts/bench-gpu.sh "" 1,1024,65536,1048576
#   ROLLOUT_SAMPLES=1,16,256,2048 scripts/bench-gpu.sh "" 1,1024,65536,1048576   # a real GPU
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-assets/model/default.safetensors}
BATCHES=${2:-1,64,1024,8192,65536}
cargo run --release -q -p swm_gpu --example bench_gpu -- "$MODEL" --batches "$BATCHES" --min-time-s 1
cargo run --release -q -p swm_gpu --example bench_rollout -- --samples "${ROLLOUT_SAMPLES:-1,4,16}" \
  --cpu-max-samples "${CPU_MAX_SAMPLES:-64}"
