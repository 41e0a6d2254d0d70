#!/usr/bin/env bash
# The main job on the embedded default: set up, build, and run `swm demo`, which generates
# the procedural Seoul-like district, builds its twin and writes out/default.swt,
# out/default-map.png, out/default.glb and out/default.geojson.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo run --release -p swm_cli --bin swm -- demo "$@"
