// Structs shared by features.wgsl and commit.wgsl (swm_gpu::layout::{FeatureParams,
// AgentInfo}). A library file, composed after kinematics.wgsl.

struct FeatureParams {
    rows: u32,
    steps_done: u32,
    frame: u32,
    record_slot: u32,
}

struct AgentInfo {
    kind: u32,
    length_m: f32,
    width_m: f32,
    intent: u32,
    recorded_signal: u32,
    hist_len0: u32,
    members_off: u32,
    members_n: u32,
    index: u32,
    time0_s: f32,
    script_off: u32,
    script_len: u32,
}
