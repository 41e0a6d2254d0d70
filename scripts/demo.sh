#!/usr/bin/env bash
# The main job on the embedded default: set up, build, run `swm demo` (generates the
# procedural Seoul-like district, builds its twin and writes out/default.swt,
# out/default-map.png, out/default.glb and out/default.geojson), then open the viewer on
# the same district with traffic moving. Where there is no display, the viewer renders a
# screenshot (out/default-view.png) instead and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo run --release -p swm_cli --bin swm -- demo "$@"
cargo build --release -p swm_viewer --bin swm-viewer
mkdir -p out
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  target/release/swm-viewer
else
  target/release/swm-viewer --screenshot out/default-view.png --frames 30
  echo "no display: wrote out/default-view.png (run with a display, or under xvfb-run, for the live viewer)"
fi
