#!/usr/bin/env bash
# World-model CPU benchmark: the Rust forward pass and rollouts vs the same network in
# PyTorch (CPU, from PyPI), on the same feature batches, in the same run; and the
# fraction of this machine's measured f32 matmul peak. See BENCHMARKS.md.
#   [RUNS=N] scripts/bench-model.sh [MODEL] [OUT_DIR]
# RUNS (default 1) repeats the Rust and PyTorch halves one after the other N times; the
# tables then show the medians over the runs and every run's ratio (this VM's speed moves
# by 10-25 % from minute to minute, so one pair can mislead).
# Needs python3 with torch (pip install torch --index-url https://download.pytorch.org/whl/cpu,
# or plain `pip install torch`); set PYTHON to a venv's python if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-assets/model/default.safetensors}
OUT=${2:-bench-out/model}
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-1}
mkdir -p "$OUT"
cargo build --release -q -p swm_model --example bench_model
for i in $(seq 1 "$RUNS"); do
  if [ "$RUNS" -gt 1 ]; then echo "== run $i of $RUNS"; fi
  cargo run --release -q -p swm_model --example bench_model -- "$MODEL" "$OUT"
  "$PYTHON" scripts/bench_model_torch.py "$MODEL" "$OUT"
  cp "$OUT/bench-rust.json" "$OUT/bench-rust-$i.json"
  cp "$OUT/bench-torch.json" "$OUT/bench-torch-$i.json"
done
"$PYTHON" - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
d, runs = sys.argv[1], int(sys.argv[2])
R = [json.load(open(f"{d}/bench-rust-{i}.json")) for i in range(1, runs + 1)]
T = [json.load(open(f"{d}/bench-torch-{i}.json")) for i in range(1, runs + 1)]
med = statistics.median
def row(name, rust, torch, peak_pct=True):
    """One table row from per-run Rust and PyTorch rates: medians, the median of the
    per-run ratios, every run's ratio, and the Rust median's share of the f32 peak."""
    ratios = [a / b for a, b in zip(rust, torch)]
    each = " / ".join(f"{x:.2f}" for x in ratios) if runs > 1 else ""
    pct = f"{100 * med(rust) * mflop * 1e6 / (peak * 1e9):.0f} %" if peak_pct else ""
    print(f"| {name} | {med(rust):,.0f} | {med(torch):,.0f} | **{med(ratios):.2f}x** | {each} | {pct} |")
# The machine's measured f32 matmul peak: the best rate over all runs of a 1024^3 product
# (the gemm crate, swm's kernel, PyTorch) and of the network's layers alone (swm's kernel,
# at the start of each run and right before and after its one-thread rollout), one thread each.
peak = max(max(r["peak_gflops_1thread"] for r in R), max(t.get("peak_gflops_1thread", 0.0) for t in T),
           max(x.get("peak_beside_gflops") or 0.0 for r in R for x in r["rollout"]))
mflop = R[0]["mflop_per_vehicle_step"]
head = "| {} | Rust agent-steps/s | PyTorch agent-steps/s | Rust / PyTorch (median) | per run | Rust % of f32 peak |"
print(f"{runs} run(s); rates are medians over the runs")
print()
print(head.format("network alone, batch"))
print("| ---: | ---: | ---: | ---: | --- | ---: |")
for k, b in enumerate(R[0]["forward"]):
    row(b["batch"], [r["forward"][k]["agent_steps_per_s"] for r in R], [t["forward"][k]["agent_steps_per_s"] for t in T])
g = lambda key: [r.get(key) for r in R]
kernel = [k for k in g("kernel_peak_gflops") if k is not None]
print(f"peak {peak:.1f} GFLOP/s (1 thread, best of the runs; 1024^3: gemm crate {max(g('gemm_peak_gflops') or [0]):.1f}, "
      f"swm kernel {f'{max(kernel):.1f}' if kernel else '-'}, PyTorch {max(t.get('peak_gflops_1thread', 0.0) for t in T):.1f}; "
      f"the network's layers alone, swm kernel: {max((l['gflops'] for r in R for l in r.get('layers', [])), default=0.0):.1f})")
print()
print(head.format("one closed-loop step, 1 thread"))
print("| --- | ---: | ---: | ---: | --- | ---: |")
for name, key in [("features + network", "features_network_agent_steps_per_s"), ("features", "features_agent_steps_per_s"), ("network", "network_agent_steps_per_s")]:
    row(name, [r["step"][key] for r in R], [t["step"][key] for t in T], name != "features")
fn = [t["step"]["features_network_agent_steps_per_s"] for t in T]
one = [[x for x in r["rollout"] if x["threads"] == 1][0]["agent_steps_per_s"] for r in R]
row("whole rollout (+ sampling, masks, kinematics) vs PyTorch features + network", one, fn)
if all("rollout_unmasked" in r for r in R):
    row("whole rollout without the masks (+ sampling, kinematics) vs PyTorch features + network", [r["rollout_unmasked"]["agent_steps_per_s"] for r in R], fn)
# The FLOPs counted above are a vehicle's with every neighbour slot present (the model's
# size); the forward pass runs the neighbour MLP on the present slots only, and a
# pedestrian's head is smaller, so it does fewer: the mean per agent step, each agent's own.
if all("mflop_done_per_agent_step" in r["step"] for r in R):
    done = lambda rate, mf: f"{100 * rate * mf * 1e6 / (peak * 1e9):.1f} %"
    st = R[0]["step"]
    r1 = [x for x in R[0]["rollout"] if x["threads"] == 1][0]
    ru = R[0]["rollout_unmasked"]
    fnr = med([r["step"]["features_network_agent_steps_per_s"] for r in R])
    print(f"FLOPs done (present neighbour slots only, each agent's head; of {mflop:.3f} MFLOP counted): one step {st['mflop_done_per_agent_step']:.3f} MFLOP "
          f"({st['present_neighbours']:.2f} slots; features + network {done(fnr, st['mflop_done_per_agent_step'])} of peak), "
          f"rollout {r1['mflop_done_per_agent_step']:.3f} ({r1['present_neighbours']:.2f} slots; **{done(med(one), r1['mflop_done_per_agent_step'])}**), "
          f"without the masks {ru['mflop_done_per_agent_step']:.3f} ({ru['present_neighbours']:.2f} slots; "
          f"{done(med([r['rollout_unmasked']['agent_steps_per_s'] for r in R]), ru['mflop_done_per_agent_step'])})")
# Each layer alone at a rollout group's rows: the kernel against the same peak.
if all("layers" in r for r in R):
    print("layers alone (best of the runs, GFLOP/s and % of peak): " + ", ".join(
        f"{l['layer']} {l['n_in']}->{l['n_out']} x{l['rows']}: {max(r['layers'][k]['gflops'] for r in R):.1f} "
        f"({100 * max(r['layers'][k]['gflops'] for r in R) / peak:.0f} %)" for k, l in enumerate(R[0]["layers"])))
# This VM's speed moves by tens of per cent between runs (the peak measured in one bench went
# from 65 to 92 GFLOP/s), so the median rate over the best peak of all runs compares numbers
# taken at different speeds. Each run's one-thread rollout is therefore also put against that
# run's own peak: the best of its first measurements (1024^3, layers alone) and of the layers
# measured right before and right after the rollout.
if all("peak_beside_gflops" in [x for x in r["rollout"] if x["threads"] == 1][0] for r in R):
    per_run = []
    for r in R:
        x = [x for x in r["rollout"] if x["threads"] == 1][0]
        own_peak = max(r["peak_gflops_1thread"], x["peak_beside_gflops"])
        per_run.append((100 * x["agent_steps_per_s"] * mflop * 1e6 / (own_peak * 1e9), x["agent_steps_per_s"], own_peak))
    print("whole rollout with the masks, 1 thread, against each run's own peak: "
          f"**{med([p[0] for p in per_run]):.0f} %** (median; runs "
          + ", ".join(f"{p:.1f} % ({rate:,.0f} agent-steps/s at {pk:.1f} GFLOP/s)" for p, rate, pk in per_run) + ")")
for threads in sorted({x["threads"] for x in R[0]["rollout"]}):
    rates = [[x for x in r["rollout"] if x["threads"] == threads][0]["agent_steps_per_s"] for r in R]
    print(f"rollout on {threads} threads: {med(rates):,.0f} agent-steps/s (median; runs {', '.join(f'{x:,.0f}' for x in rates)})")
ts = T[-1]["step"]
print(f"features: max |PyTorch - Rust| {max(t['step']['max_abs_feature_diff'] for t in T):.2e}, agents with a feature off by > 1e-3: "
      f"{max(t['step']['features_differing_over_1e-3'] for t in T)} of {ts['agents']}; logits max |diff| {max(t['step']['max_abs_logit_diff'] for t in T):.2e}")
PY
