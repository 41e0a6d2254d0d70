#!/usr/bin/env bash
# Viewer benchmark: frame time (mean, p95 over the steady frames), scene triangles and
# draw calls for real Yeouido, the default district with 5,000 agents and a synthetic city of
# about 100,000 buildings (a 10.5 km x 10.5 km procedural district) with 5,000 agents,
# rendered headlessly (the best Vulkan adapter: a real GPU, else Mesa's lavapipe). See
# BENCHMARKS.md ("Viewer").
#   scripts/bench-viewer.sh [FRAMES] [WIDTH] [HEIGHT]     e.g. scripts/bench-viewer.sh 122 1920 1080
# SIM_PER_FRAME: simulated seconds per frame (default 0.0166667: real time at 60 fps);
# MODEL_TRAFFIC=1: the world model drives the agents (on a hardware GPU when there is one).
# Needs the shared data beside the repository (../shared/data or SWM_SHARED_DATA) for Yeouido.
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${1:-12}
WIDTH=${2:-1280}
HEIGHT=${3:-720}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo build --release -q -p swm_viewer --bin swm-viewer -p swm_cli --bin swm
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
DATA=${SWM_SHARED_DATA:-../shared/data}
COMMON=(--frames "$FRAMES" --width "$WIDTH" --height "$HEIGHT" --stats --camera orbit
  --sim-per-frame "${SIM_PER_FRAME:-0.0166667}")
if [ -n "${MODEL_TRAFFIC:-}" ]; then COMMON+=(--model-traffic); fi

if [ -f "$DATA/seoul/yeouido.osm.pbf" ]; then
  target/release/swm ingest "$DATA/seoul/yeouido.osm.pbf" --bbox 126.915,37.515,126.945,37.535 -o "$OUT/yeouido.swt" >/dev/null
  echo "== Yeouido (island core), 300 vehicles + 200 pedestrians"
  /usr/bin/time -f "wall %e s, max RSS %M KB" target/release/swm-viewer "$OUT/yeouido.swt" --screenshot "$OUT/y.png" "${COMMON[@]}"
else
  echo "Yeouido skipped: $DATA/seoul/yeouido.osm.pbf not found"
fi

echo "== default district, 3,000 vehicles + 2,000 pedestrians"
/usr/bin/time -f "wall %e s, max RSS %M KB" target/release/swm-viewer --screenshot "$OUT/d.png" \
  --vehicles 3000 --pedestrians 2000 --preroll 5 "${COMMON[@]}"

sed -e 's/^size_m = .*/size_m = [10500.0, 10500.0]/' -e 's/^name = .*/name = "synthetic-100k"/' \
  data/default-district.toml > "$OUT/synthetic.toml"
echo "== synthetic city (10.5 km x 10.5 km procedural district), 4,000 vehicles + 1,000 pedestrians"
/usr/bin/time -f "wall %e s, max RSS %M KB" target/release/swm-viewer --district "$OUT/synthetic.toml" \
  --screenshot "$OUT/s.png" --vehicles 4000 --pedestrians 1000 --preroll 2 "${COMMON[@]}"
