// The end of a rollout step on the device: each row's new state (the sampler's output) goes
// into the history ring's next slot (slot (11 + steps_done) % 11, i.e. age 0 after the step)
// and, when `record_slot` is not 0xffffffff, into the record buffer's frame slot
// (records[record_slot * rows + row]), read back in chunks. A scripted agent (a robot's
// plan: AgentInfo::script_len > 0) takes its script's state for the frame instead. Composed
// after kinematics.wgsl and feature_types.wgsl.

@group(0) @binding(0) var<uniform> params: FeatureParams;
@group(0) @binding(1) var<storage, read> next: array<AgentState>;
@group(0) @binding(2) var<storage, read_write> hist: array<AgentState>;
@group(0) @binding(3) var<storage, read_write> records: array<AgentState>;
@group(0) @binding(4) var<storage, read> info: array<AgentInfo>;
@group(0) @binding(5) var<storage, read> scripts: array<AgentState>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wg.x + wg.y * nwg.x) * 64u + li;
    if row >= params.rows {
        return;
    }
    var s = next[row];
    let me = info[row];
    if me.script_len > 0u {
        // The script's pose on the deck the agent is on.
        s = scripts[me.script_off + min(params.frame - 1u, me.script_len - 1u)];
        s.deck_m = next[row].deck_m;
    }
    hist[((params.steps_done + 11u) % 11u) * params.rows + row] = s;
    if params.record_slot != 0xffffffffu {
        records[params.record_slot * params.rows + row] = s;
    }
}
