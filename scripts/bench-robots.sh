#!/usr/bin/env bash
# Robots planning in imagination: many seeded episodes of the delivery robot and the car on
# the real Yeouido and Jamsil twins (ingested from ../shared/data or $SWM_SHARED_DATA), with
# the world-model MPPI planner ("wm") and the constant-velocity baseline ("cv": the same
# MPPI, costs and budget, only the prediction differs). Rush-hour traffic (2x the
# environment defaults), teacher simulator as ground truth.
#
#   scripts/bench-robots.sh                      # 12 episodes per robot, planner and twin
#   EPISODES=30 FIRST_SEED=1 scripts/bench-robots.sh
#   TWINS="seoul/yeouido.osm.pbf" ROBOTS=car scripts/bench-robots.sh
#   WORLD=model scripts/bench-robots.sh          # the world model moves the other agents
#
# Writes bench-out/robots-<world>/<twin>-<robot>.jsonl (one line per episode, one summary line per
# planner) and prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES=${EPISODES:-12}
FIRST_SEED=${FIRST_SEED:-1}
ROBOTS=${ROBOTS:-"delivery car"}
TWINS=${TWINS:-"seoul/yeouido.osm.pbf seoul/jamsil.osm.pbf"}
DATA=${SWM_SHARED_DATA:-../shared/data}
WORLD=${WORLD:-teacher}
OUT=bench-out/robots-$WORLD
mkdir -p "$OUT"
cargo build --release -p swm --example bench_robots
BIN=${CARGO_TARGET_DIR:-target}/release/examples/bench_robots
for twin in $TWINS; do
    if [ ! -f "$DATA/$twin" ]; then
        echo "missing $DATA/$twin (set SWM_SHARED_DATA)" >&2
        [ "${CI:-}" = "true" ] && exit 1
        continue
    fi
    name=$(basename "$twin" .osm.pbf)
    for robot in $ROBOTS; do
        echo "== $name $robot: $EPISODES episodes from seed $FIRST_SEED" >&2
        "$BIN" "$DATA/$twin" "$robot" "$EPISODES" "$FIRST_SEED" wm,cv "$WORLD" > "$OUT/$name-$robot.jsonl"
    done
done
python3 - "$OUT" <<'PY'
import json, pathlib, sys
rows = []
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    for line in f.read_text().splitlines():
        d = json.loads(line)
        if d.get("summary"):
            rows.append(d)
print("| twin | world | robot | planner | episodes | success | collision (struck) | timeout | time to goal (s) | red violations | planning ms/step |")
print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for d in rows:
    print(f"| {d['twin']} | {d.get('world', 'teacher')} | {d['robot']} | {d['planner']} | {d['episodes']} | {d['success_rate']:.2f} | "
          f"{d['collision_rate']:.2f} ({d['collisions_struck']}) | {d['timeout_rate']:.2f} | "
          f"{d['mean_time_to_goal_s']:.1f} | {d['red_violations']} | {d['planning_ms_per_step']:.1f} |")
PY
