#!/usr/bin/env bash
# Teacher-simulator speed benchmark: `swm simulate` against SUMO on the same OSM extract, side
# by side on this machine, both single-threaded, both at 0.1 s steps, both with about N
# vehicles in the district, counting vehicle updates (vehicle-steps) per second of wall time.
#
#   scripts/bench-sim.sh                      # N=300, Jamsil and Yeouido; writes bench-out/sim/
#   N=500 DURATION=300 scripts/bench-sim.sh jamsil
#
# SUMO side, per district:
#   1. netconvert on the same file (as OSM XML, via osmium cat): osmNetconvert.typ.xml,
#      --tls.guess --junctions.join, passenger edges only (the benchmark has no pedestrians),
#      largest connected component only (--keep-edges.components 1: on Yeouido most random
#      trips are otherwise unroutable). Not timed.
#   2. Demand from randomTrips.py (--fringe-factor 10: trips mostly enter and leave at the
#      district edge, like swm's spawning; --validate: routed with duarouter). The period is
#      calibrated so that about N vehicles are running at steady state (Little's law: period
#      scaled by measured running / N, a few warm-up runs until within 7 %), and capped at N
#      with --max-num-vehicles N (--max-depart-delay 30 s), as swm keeps exactly N: without
#      the cap, congestion keeps growing the count during the timed window (365 instead of
#      300 on Jamsil, 549 on Yeouido in a trial run).
#   3. The last calibration run simulates the WARMUP seconds and saves its state; the timed
#      run loads that state and simulates DURATION more seconds with --summary-output.
#      Vehicle updates = sum over its steps of `running` (summary output); wall time = SUMO's
#      own "Performance: Duration" of the simulation loop (excludes loading the net, routes
#      and state). SUMO's own UPS figure is the same ratio and is printed as a cross-check.
# swm side: `swm ingest` of the same .pbf (not timed), then `swm simulate --vehicles N
#   --pedestrians 0 --duration DURATION` (swm keeps N vehicles in the district from step 0,
#   so it needs no warm-up). Its metrics.json vehicle_updates_per_s = vehicle updates /
#   (wall time of the step loop minus the time spent in the per-step callback, which writes
#   the Parquet trajectories and accumulates the safety metrics). The process's wall time
#   and CPU time (twin load, setup, Parquet, metrics: everything; user + sys, and swm
#   encodes the Parquet file on a second thread, so its CPU time exceeds its wall time) are
#   reported too; the process ratio is per CPU-second.
# Each timed run is repeated RUNS times (default 3), SUMO's and swm's interleaved (run 1 of
# each, then run 2, ...: the VM's speed drifts over minutes); the table shows the medians,
# and a comment line the ratio of each interleaved pair.
#
# Needs: sumo sumo-tools osmium-tool (apt), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${SWM_SHARED_DATA:-$(pwd)/../shared/data}"
N="${N:-300}"
DURATION="${DURATION:-600}"
WARMUP="${WARMUP:-600}"
RUNS="${RUNS:-3}"
SEED="${SEED:-1}"
districts=("$@")
[ ${#districts[@]} -gt 0 ] || districts=(jamsil yeouido)
out=bench-out/sim
mkdir -p "$out"
need=""
for p in sumo sumo-tools osmium-tool time; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
cargo build --release -p swm_cli --bin swm
swm="${CARGO_TARGET_DIR:-target}/release/swm"
export SUMO_HOME="${SUMO_HOME:-/usr/share/sumo}"
tm="$SUMO_HOME/data/typemap"

# Mean of `running` in a summary file over sim times in [from, to).
mean_running() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, xml.etree.ElementTree as ET
f, a, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
r = [int(s.get("running")) for s in ET.parse(f).getroot() if a <= float(s.get("time")) < b]
print(f"{sum(r) / max(len(r), 1):.1f}")
PY
}

results="$out/results.jsonl"
: > "$results"
for name in "${districts[@]}"; do
  pbf="$data/seoul/$name.osm.pbf"
  d="$out/$name"
  mkdir -p "$d"
  echo "== $name: N=$N, warm-up ${WARMUP} s (SUMO), timed ${DURATION} s, step 0.1 s, $RUNS runs" >&2
  # --- SUMO network and demand (not timed) ---
  osmium cat "$pbf" -o "$d/$name.osm" -O
  netconvert --osm-files "$d/$name.osm" --type-files "$tm/osmNetconvert.typ.xml" \
    --keep-edges.by-vclass passenger --remove-edges.isolated --keep-edges.components 1 --tls.guess --junctions.join \
    -o "$d/net.xml" --no-warnings >/dev/null
  end=$((WARMUP + DURATION))
  cap=(--max-num-vehicles "$N" --max-depart-delay 30)
  period=1.0
  for it in 1 2 3 4; do
    python3 "$SUMO_HOME/tools/randomTrips.py" -n "$d/net.xml" -b 0 -e "$end" -p "$period" \
      --fringe-factor 10 --min-distance 300 --validate --seed "$SEED" \
      -o "$d/trips.xml" -r "$d/rou.xml" >/dev/null 2>&1
    sumo -n "$d/net.xml" -r "$d/rou.xml" --step-length 0.1 -b 0 -e $((WARMUP + 1)) --seed "$SEED" \
      --no-step-log --no-warnings --summary-output "$d/warmup.sum.xml" "${cap[@]}" \
      --save-state.times "$WARMUP" --save-state.files "$d/state.xml" >/dev/null
    running=$(mean_running "$d/warmup.sum.xml" $((WARMUP - 120)) "$WARMUP")
    echo "   calibration $it: period $period s -> $running running at the end of the warm-up" >&2
    ok=$(python3 -c "print(int(abs($running / $N - 1) < 0.07))")
    [ "$ok" = 1 ] && break
    period=$(python3 -c "print(f'{$period * $running / $N:.4f}')")
  done
  # --- timed runs: SUMO and swm interleaved, so that both see the same machine (its speed
  # drifts over minutes on a shared VM); swm's twin from `swm ingest` (not timed) ---
  "$swm" ingest --quiet "$pbf" -o "$d/$name.swt" >/dev/null
  for r in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %U %S" -o "$d/sumo-time.txt" \
      sumo -n "$d/net.xml" -r "$d/rou.xml" --load-state "$d/state.xml" --step-length 0.1 \
      -b "$WARMUP" -e "$end" --seed "$SEED" "${cap[@]}" --no-step-log --no-warnings --duration-log.statistics \
      --summary-output "$d/sumo.sum.xml" > "$d/sumo-$r.log"
    python3 - "$d" "$r" "$name" "$period" "$N" "$DURATION" >> "$results" <<'PY'
import json, re, sys, xml.etree.ElementTree as ET
d, r, name, period, n, dur = sys.argv[1:]
log = open(f"{d}/sumo-{r}.log").read()
m = re.search(r"Duration: ([0-9.]+)\s*(ms|s)", log)
loop_s = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
ups = float(re.search(r"UPS: ([0-9.]+)", log).group(1))
summ = list(ET.parse(f"{d}/sumo.sum.xml").getroot())
running = [int(s.get("running")) for s in summ]
speed = sum(float(s.get("meanSpeed")) * int(s.get("running")) for s in summ) / max(sum(running), 1)
updates = sum(running)
proc_s, user_s, sys_s = map(float, open(f"{d}/sumo-time.txt").read().split()[-3:])
print(json.dumps(dict(district=name, tool="sumo", run=int(r), period_s=float(period), n=int(n),
    duration_s=float(dur), steps=len(running), mean_vehicles=updates / len(running),
    vehicle_updates=updates, loop_s=loop_s, process_s=proc_s, process_cpu_s=user_s + sys_s,
    updates_per_s=updates / loop_s, sumo_ups=ups, mean_speed=speed)))
PY
    rm -rf "$d/swm-run"
    /usr/bin/time -f "%e %U %S" -o "$d/swm-time.txt" \
      "$swm" --quiet simulate "$d/$name.swt" --vehicles "$N" --pedestrians 0 --duration "$DURATION" \
      --seed "$SEED" -o "$d/swm-run" > "$d/swm-$r.log"
    python3 - "$d" "$r" "$name" "$N" "$DURATION" >> "$results" <<'PY'
import json, sys
d, r, name, n, dur = sys.argv[1:]
m = json.load(open(f"{d}/swm-run/metrics.json"))
man = json.load(open(f"{d}/swm-run/manifest.json"))
proc_s, user_s, sys_s = map(float, open(f"{d}/swm-time.txt").read().split()[-3:])
steps = man["steps"]
print(json.dumps(dict(district=name, tool="swm", run=int(r), n=int(n), duration_s=float(dur),
    steps=steps, mean_vehicles=m["vehicle_updates"] / steps, vehicle_updates=m["vehicle_updates"],
    loop_s=m["vehicle_updates"] / m["vehicle_updates_per_s"], process_s=proc_s, process_cpu_s=user_s + sys_s,
    updates_per_s=m["vehicle_updates_per_s"], collisions=m["vehicle_collisions"],
    gridlocked=m["gridlocked_vehicles"], mean_speed=m["mean_speed_mps"])))
PY
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
print("| district | simulator | mean vehicles | vehicle updates | timed (s) | updates/s | process wall / CPU (s) | updates per process CPU-s | swm / SUMO |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in dict.fromkeys(r["district"] for r in rows):
    g = {t: [r for r in rows if r["district"] == name and r["tool"] == t] for t in ("sumo", "swm")}
    s = {t: dict(mv=med([r["mean_vehicles"] for r in g[t]]), up=med([r["vehicle_updates"] for r in g[t]]),
                 loop=med([r["loop_s"] for r in g[t]]), ups=med([r["updates_per_s"] for r in g[t]]),
                 proc=med([r["process_s"] for r in g[t]]),
                 cpu=med([r.get("process_cpu_s", r["process_s"]) for r in g[t]])) for t in g}
    for t in s:
        s[t]["pups"] = s[t]["up"] / s[t]["cpu"]
    for t, label in (("sumo", "SUMO 1.15"), ("swm", "swm simulate")):
        x = s[t]
        ratio = f"**{x['ups'] / s['sumo']['ups']:.1f}×** ({x['pups'] / s['sumo']['pups']:.1f}× process CPU)"
        print(f"| {name} | {label} | {x['mv']:.0f} | {x['up']:,.0f} | {x['loop']:.2f} | {x['ups']:,.0f} | "
              f"{x['proc']:.2f} / {x['cpu']:.2f} | {x['pups']:,.0f} | {ratio} |")
    pairs = sorted(w["updates_per_s"] / u["updates_per_s"] for u in g["sumo"] for w in g["swm"] if w["run"] == u["run"])
    print(f"<!-- {name}: swm / SUMO run by run (interleaved pairs): "
          + ", ".join(f"{x:.1f}x" for x in pairs) + f"; median {med(pairs):.1f}x -->")
    sw = g["swm"][0]
    su = g["sumo"][0]
    print(f"<!-- {name}: SUMO period {su['period_s']} s, own UPS {med([r['sumo_ups'] for r in g['sumo']]):,.0f}, "
          f"mean speed {su['mean_speed']:.2f} m/s; "
          f"swm run: {sw['collisions']} vehicle collisions, {sw['gridlocked']} gridlocked, mean speed {sw['mean_speed']:.2f} m/s -->")
PY
