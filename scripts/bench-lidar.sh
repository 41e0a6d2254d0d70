#!/usr/bin/env bash
# Lidar ray casting: swm_sensors against Open3D's RaycastingScene on the same meshes and rays.
#
#   scripts/bench-lidar.sh [--default-twin]
#
# 1. `cargo run --release -p swm_sensors --example bench_lidar` meshes the Yeouido core twin
#    (../shared/data/seoul/yeouido.osm.pbf, or the embedded default district with
#    --default-twin), casts 1.15 million 32-channel lidar rays on 1 and 2 threads, and writes
#    the mesh, the rays and its distances to bench-out/lidar/.
# 2. Open3D (PyPI) is installed into a virtual environment under bench-out/venv-open3d (once;
#    it needs libusb-1.0-0 from Debian), then scripts/bench_lidar_open3d.py times
#    open3d.t.geometry.RaycastingScene.cast_rays on the same data and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench-out/lidar
VENV=bench-out/venv-open3d
mkdir -p "$OUT"
cargo run --release -p swm_sensors --example bench_lidar -- "$OUT" "$@"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet open3d numpy
fi
if ! "$VENV/bin/python" -c "import open3d" 2>/dev/null; then
  echo "open3d does not import (on Debian it needs: apt-get install libusb-1.0-0)" >&2
  exit 1
fi
"$VENV/bin/python" scripts/bench_lidar_open3d.py "$OUT" | tee "$OUT/table.md"
