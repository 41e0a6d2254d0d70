// Token sampling and the kinematic step, fused (composed after philox.wgsl, kinematics.wgsl
// and token_rule.wgsl, whose rule and structs it uses). One workgroup per agent; the uniform is
// unit_f32 of word 0 of the keyed Philox draw (step, agent, scenario, sample, stream 0).

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<AgentKey>;
@group(0) @binding(3) var<storage, read> state_in: array<AgentState>;
@group(0) @binding(4) var<storage, read_write> state_out: array<AgentState>;
@group(0) @binding(5) var<storage, read_write> tokens: array<u32>;

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
    let bits = keyed_u32x4(key_from_seed(p.seed_lo, p.seed_hi), key.scenario, key.agent, p.step, key.sample, STREAM_TOKEN);
    let token = draw_token(base, vocab, p.temperature, p.top_k, p.top_p, unit_f32(bits.x), li, false);
    if li == 0u {
        tokens[agent] = token;
        state_out[agent] = token_step(key.agent_class, state_in[agent], token);
    }
}
