// The token-sampling rule of swm_model::sampling::sample_token, for one agent per workgroup
// (64 invocations): p = softmax(logits / temperature); tokens ordered by probability
// (descending, ties by index); top-k, then the shortest prefix whose mass reaches top-p; the
// token is the first whose cumulative kept mass exceeds u · kept. The sums run in the CPU's
// order on one thread (exp is computed in parallel, ranks in parallel), so tokens match the
// CPU's except where exp differs in the last bits and u falls on a boundary. Tokens with
// `banned[t] != 0` (when `use_ban`) count as logit −∞, as the feasibility masks set them.
// A library file: the kernel declares `logits` (array<f32>).

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

var<workgroup> e: array<f32, MAX_VOCAB>;
var<workgroup> order: array<u32, MAX_VOCAB>;
var<workgroup> max_logit: f32;
var<workgroup> banned: array<u32, MAX_VOCAB>;

fn is_banned(t: u32, use_ban: bool) -> bool {
    return use_ban && banned[t] != 0u;
}

// The token drawn with uniform `u` from the `vocab` logits at `base` (valid in invocation 0;
// the others get 0). Call from uniform control flow (it has barriers).
fn draw_token(base: u32, vocab: u32, temperature: f32, top_k: u32, top_p: f32, u: f32, li: u32, use_ban: bool) -> u32 {
    if li == 0u {
        var m = 0.0;
        var first = true;
        for (var t = 0u; t < vocab; t++) {
            if !is_banned(t, use_ban) {
                if first {
                    m = logits[base + t];
                    first = false;
                } else {
                    m = max(m, logits[base + t]);
                }
            }
        }
        max_logit = m;
    }
    let m = workgroupUniformLoad(&max_logit);
    for (var t = li; t < vocab; t += GROUP) {
        if is_banned(t, use_ban) {
            e[t] = 0.0;
        } else {
            e[t] = exp((logits[base + t] - m) / temperature);
        }
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
        return 0u;
    }
    var token = 0u;
    // Greedy: temperature 0 or a non-finite maximum (argmax, lowest index on ties).
    let finite = m == m && abs(m) <= 3.4028235e38;
    if temperature <= 0.0 || !finite {
        var found = false;
        for (var t = 0u; t < vocab; t++) {
            if !is_banned(t, use_ban) && (!found || logits[base + t] > logits[base + token]) {
                token = t;
                found = true;
            }
        }
    } else {
        var sum = 0.0;
        for (var t = 0u; t < vocab; t++) {
            sum += e[t];
        }
        var keep = vocab;
        if top_k > 0u {
            keep = min(top_k, vocab);
        }
        if top_p < 1.0 {
            var mass = 0.0;
            for (var j = 0u; j < keep; j++) {
                mass += e[order[j]] / sum;
                if mass >= top_p {
                    keep = j + 1u;
                    break;
                }
            }
        }
        var kept = 0.0;
        for (var j = 0u; j < keep; j++) {
            kept += e[order[j]];
        }
        let threshold = u * kept;
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
    return token;
}
