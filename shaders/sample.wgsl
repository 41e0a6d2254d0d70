// Token sampling and the kinematic step, fused (composed after philox.wgsl and
// kinematics.wgsl). One workgroup per agent. The rule is swm_model::sampling::sample_token:
// p = softmax(logits / temperature); tokens ordered by probability (descending, ties by index);
// top-k, then the shortest prefix whose mass reaches top-p; the token is the first whose
// cumulative kept mass exceeds u · kept, u = unit_f32 of the keyed Philox draw
// (step, agent, scenario, sample, stream 0). The sums run in the CPU's order on one thread
// (exp is computed in parallel, ranks in parallel), so tokens match the CPU's except where
// exp differs in the last bits and u falls on a boundary.

struct SampleParams {
    agents: u32,
    step: u32,
    seed_lo: u32,
    seed_hi: u32,
    temperature: f32,
    top_p: f32,
    top_k: u32,
    logit_stride: u32,
}

// Who a row is: the keyed generator's counter parts and the agent class (0 vehicle, 1 pedestrian).
struct AgentKey {
    scenario: u32,
    agent: u32,
    sample: u32,
    agent_class: u32,
}

const STREAM_TOKEN: u32 = 0u;
const MAX_VOCAB: u32 = 144u;
const GROUP: u32 = 64u;

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<AgentKey>;
@group(0) @binding(3) var<storage, read> state_in: array<AgentState>;
@group(0) @binding(4) var<storage, read_write> state_out: array<AgentState>;
@group(0) @binding(5) var<storage, read_write> tokens: array<u32>;

var<workgroup> e: array<f32, MAX_VOCAB>;
var<workgroup> order: array<u32, MAX_VOCAB>;
var<workgroup> max_logit: f32;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let agent = wg.x + wg.y * groups.x;
    if agent >= p.agents {
        return;
    }
    let key = keys[agent];
    var vocab = VEHICLE_TOKENS;
    if key.agent_class != CLASS_VEHICLE {
        vocab = PEDESTRIAN_TOKENS;
    }
    let base = agent * p.logit_stride;
    if li == 0u {
        var m = logits[base];
        for (var t = 1u; t < vocab; t++) {
            m = max(m, logits[base + t]);
        }
        max_logit = m;
    }
    let m = workgroupUniformLoad(&max_logit);
    for (var t = li; t < vocab; t += GROUP) {
        e[t] = exp((logits[base + t] - m) / p.temperature);
    }
    workgroupBarrier();
    for (var t = li; t < vocab; t += GROUP) {
        let et = e[t];
        var rank = 0u;
        for (var j = 0u; j < vocab; j++) {
            let ej = e[j];
            if ej > et || (ej == et && j < t) {
                rank++;
            }
        }
        order[rank] = t;
    }
    workgroupBarrier();
    if li != 0u {
        return;
    }
    var token = 0u;
    // Greedy: temperature 0 or a non-finite maximum (argmax, lowest index on ties).
    let finite = m == m && abs(m) <= 3.4028235e38;
    if p.temperature <= 0.0 || !finite {
        for (var t = 1u; t < vocab; t++) {
            if logits[base + t] > logits[base + token] {
                token = t;
            }
        }
    } else {
        var sum = 0.0;
        for (var t = 0u; t < vocab; t++) {
            sum += e[t];
        }
        var keep = vocab;
        if p.top_k > 0u {
            keep = min(p.top_k, vocab);
        }
        if p.top_p < 1.0 {
            var mass = 0.0;
            for (var j = 0u; j < keep; j++) {
                mass += e[order[j]] / sum;
                if mass >= p.top_p {
                    keep = j + 1u;
                    break;
                }
            }
        }
        var kept = 0.0;
        for (var j = 0u; j < keep; j++) {
            kept += e[order[j]];
        }
        let bits = keyed_u32x4(key_from_seed(p.seed_lo, p.seed_hi), key.scenario, key.agent, p.step, key.sample, STREAM_TOKEN);
        let threshold = unit_f32(bits.x) * kept;
        token = order[keep - 1u];
        var acc = 0.0;
        for (var j = 0u; j < keep; j++) {
            acc += e[order[j]];
            if acc > threshold {
                token = order[j];
                break;
            }
        }
    }
    tokens[agent] = token;
    state_out[agent] = token_step(key.agent_class, state_in[agent], token);
}
