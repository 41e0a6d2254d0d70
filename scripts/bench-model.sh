#!/usr/bin/env bash
# World-model CPU benchmark: the Rust forward pass and rollouts vs the same network in
# PyTorch (CPU, from PyPI), on the same feature batches, in the same run; and the
# fraction of this machine's measured f32 matmul peak. See BENCHMARKS.md.
#   scripts/bench-model.sh [MODEL] [OUT_DIR]
# Needs python3 with torch (pip install torch --index-url https://download.pytorch.org/whl/cpu,
# or plain `pip install torch`); set PYTHON to a venv's python if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-assets/model/default.safetensors}
OUT=${2:-bench-out/model}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
cargo run --release -q -p swm_model --example bench_model -- "$MODEL" "$OUT"
"$PYTHON" scripts/bench_model_torch.py "$MODEL" "$OUT"
"$PYTHON" - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(f"{d}/bench-rust.json")); t = json.load(open(f"{d}/bench-torch.json"))
# The machine's measured f32 matmul peak: the best 1024^3 product of the gemm crate, swm's
# kernel and PyTorch, one thread each.
peak = max(r["peak_gflops_1thread"], t.get("peak_gflops_1thread", 0.0))
mflop = r["mflop_per_vehicle_step"]
pct = lambda rate: f"{100 * rate * mflop * 1e6 / (peak * 1e9):.0f} %"
print("| batch | Rust agent-steps/s | PyTorch agent-steps/s | Rust / PyTorch | Rust % of f32 peak |")
print("| ---: | ---: | ---: | ---: | ---: |")
for a, b in zip(r["forward"], t["forward"]):
    print(f"| {a['batch']} | {a['agent_steps_per_s']:,.0f} | {b['agent_steps_per_s']:,.0f} | {a['agent_steps_per_s']/b['agent_steps_per_s']:.2f}x | {pct(a['agent_steps_per_s'])} |")
kernel = r.get("kernel_peak_gflops")
print(f"peak {peak:.1f} GFLOP/s (1 thread, 1024^3; gemm crate {r.get('gemm_peak_gflops', r['peak_gflops_1thread']):.1f}, "
      f"swm kernel {'-' if kernel is None else f'{kernel:.1f}'}, PyTorch {t.get('peak_gflops_1thread', float('nan')):.1f})")
rs, ts = r["step"], t["step"]
print()
print("| one closed-loop step, 1 thread | Rust agent-steps/s | PyTorch agent-steps/s | Rust / PyTorch | Rust % of f32 peak |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, key in [("features + network", "features_network_agent_steps_per_s"), ("features", "features_agent_steps_per_s"), ("network", "network_agent_steps_per_s")]:
    print(f"| {name} | {rs[key]:,.0f} | {ts[key]:,.0f} | {rs[key]/ts[key]:.2f}x | {'' if name == 'features' else pct(rs[key])} |")
one = [x for x in r["rollout"] if x["threads"] == 1][0]
print(f"| whole rollout (+ sampling, masks, kinematics) vs PyTorch features + network | {one['agent_steps_per_s']:,.0f} | {ts['features_network_agent_steps_per_s']:,.0f} | {one['agent_steps_per_s']/ts['features_network_agent_steps_per_s']:.2f}x | {pct(one['agent_steps_per_s'])} |")
if "rollout_unmasked" in r:
    u = r["rollout_unmasked"]
    print(f"| whole rollout without the masks (+ sampling, kinematics) vs PyTorch features + network | {u['agent_steps_per_s']:,.0f} | {ts['features_network_agent_steps_per_s']:,.0f} | {u['agent_steps_per_s']/ts['features_network_agent_steps_per_s']:.2f}x | {pct(u['agent_steps_per_s'])} |")
for x in r["rollout"]:
    print(f"rollout on {x['threads']} threads: {x['agent_steps_per_s']:,.0f} agent-steps/s")
print(f"features: max |PyTorch - Rust| {ts['max_abs_feature_diff']:.2e}, agents with a feature off by > 1e-3: {ts['features_differing_over_1e-3']} of {ts['agents']}; logits max |diff| {ts['max_abs_logit_diff']:.2e}")
PY
