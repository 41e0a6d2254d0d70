#!/usr/bin/env bash
# Counts the instructions the CPU rollout executes (valgrind's callgrind): a measure of its
# cost that does not move with a noisy machine's speed, for comparing commits. The synthetic
# district of `bench_model`, N scenarios (default 1: 2 samples × 80 frames × 48 agents =
# 7,680 agent steps), one thread, the default masks (UNMASKED=1: none). Prints the
# fingerprint (the same for every commit that keeps the rollouts bit for bit), the
# instructions inside the rollouts, and those outside the network's forward pass (features,
# masks, sampling, kinematics, records).
#
#   [UNMASKED=1] scripts/count-rollout-instructions.sh [SCENARIOS] [MODEL]
#
# Needs valgrind (Debian: apt-get install valgrind); about a minute per scenario. Under
# valgrind the CPU reports no AVX-512, so the network runs the AVX2 kernel (or, without
# AVX2, the `gemm` crate's path) and the feature rays their AVX2 march instead of the
# AVX-512 ones: compare the count outside the forward pass between commits, not the total
# with a native run. Counts before session 34 (2026-12-02) had no AVX2 ray march, so their
# count outside the forward pass is not comparable with later ones.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (Debian: apt-get install valgrind)" >&2; exit 1; }
done
N=${1:-1}
MODEL=${2:-assets/model/default.safetensors}
cargo build --release -q -p swm_model --example bench_model
out=$(mktemp)
trap 'rm -f "$out"' EXIT
SWM_BENCH_ROLLOUT_ONLY=$N SWM_BENCH_UNMASKED=${UNMASKED:-0} valgrind --tool=callgrind --collect-atstart=no \
  --toggle-collect='*rollout_scenarios_masked*' --callgrind-out-file="$out" \
  "${CARGO_TARGET_DIR:-target}/release/examples/bench_model" "$MODEL" 2>/dev/null | grep fingerprint
total=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
net=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk '/Network::forward/ && !seen { gsub(",", "", $1); print $1; seen = 1 }')
echo "instructions in the rollouts: $total; outside the network's forward pass: $((total - net))"
