//! Plain-data structs shared with the WGSL kernels (`#[repr(C)]`, `Pod`). Their sizes and
//! field offsets are checked against naga's layout of the WGSL structs of the same name
//! (`tests/shader_validation.rs`), so a field added on one side only fails a test.

use bytemuck::{Pod, Zeroable};

/// `philox_test.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct PhiloxTestParams {
    pub rows: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// `linear.wgsl` (see the shader for the gather and the strides).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LinearParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub relu: u32,
    pub a_offset: u32,
    pub a_group_rows: u32,
    pub a_group_stride: u32,
    pub a_row_stride: u32,
    pub w_offset: u32,
    pub b_offset: u32,
    pub c_offset: u32,
    pub c_stride: u32,
    pub tiles_n: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// `nbr_mlp.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NbrParams {
    pub agents: u32,
    pub feature_dim: u32,
    pub ego_dim: u32,
    pub x_stride: u32,
    pub w0_offset: u32,
    pub b0_offset: u32,
    pub w1t_offset: u32,
    pub b1_offset: u32,
}

/// `sample.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SampleParams {
    pub agents: u32,
    /// The frame being produced (the keyed counter's `step`).
    pub step: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    /// Floats between rows of the logits buffer.
    pub logit_stride: u32,
}

/// Who a row is, for the keyed generator (`sample.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct AgentKey {
    /// Scenario id, low 32 bits.
    pub scenario: u32,
    /// The agent's index in its scenario.
    pub agent: u32,
    pub sample: u32,
    /// 0 vehicle, 1 pedestrian.
    pub agent_class: u32,
}

/// One agent's kinematic state on the GPU (`kinematics.wgsl`): each coordinate is whole
/// metres (`i32`) plus an offset in `[0, 1)` m (`f32`), so steps keep ~1e-7 m precision
/// kilometres from the origin (twin frame).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AgentState {
    pub x_cell_m: i32,
    pub y_cell_m: i32,
    pub x_offset_m: f32,
    pub y_offset_m: f32,
    pub heading_rad: f32,
    pub speed_mps: f32,
    /// Height of the road deck the agent is on above the ground (m;
    /// `swm_model::rollout::RolloutAgent::deck_m`): the level its path matches keep to and
    /// the collision mask's level. `features.wgsl` updates it from the vehicle's path match
    /// at each new state, as the CPU's records do.
    pub deck_m: f32,
    pub _pad1: u32,
}

impl AgentState {
    /// From the CPU's kinematics (f64).
    pub fn from_kinematics(k: &swm_model::tokens::Kinematics) -> AgentState {
        let split = |v: f64| {
            let cell = v.floor();
            // The offset rounds to 1.0 for v just below an integer: carry it.
            let off = (v - cell) as f32;
            if off >= 1.0 { (cell as i32 + 1, 0.0) } else { (cell as i32, off) }
        };
        let (x_cell_m, x_offset_m) = split(k.point_enu[0]);
        let (y_cell_m, y_offset_m) = split(k.point_enu[1]);
        AgentState {
            x_cell_m,
            y_cell_m,
            x_offset_m,
            y_offset_m,
            heading_rad: k.heading_rad as f32,
            speed_mps: k.speed_mps as f32,
            deck_m: 0.0,
            _pad1: 0,
        }
    }

    /// The same state on a deck `deck_m` high (m).
    pub fn on_deck(self, deck_m: f64) -> AgentState {
        AgentState { deck_m: deck_m as f32, ..self }
    }

    /// To the CPU's kinematics.
    pub fn to_kinematics(&self) -> swm_model::tokens::Kinematics {
        swm_model::tokens::Kinematics {
            point_enu: [
                f64::from(self.x_cell_m) + f64::from(self.x_offset_m),
                f64::from(self.y_cell_m) + f64::from(self.y_offset_m),
            ],
            heading_rad: f64::from(self.heading_rad),
            speed_mps: f64::from(self.speed_mps),
        }
    }
}

/// `features.wgsl` and `commit.wgsl`: the step being computed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FeatureParams {
    pub rows: u32,
    /// Steps already taken (the history ring's position).
    pub steps_done: u32,
    /// The frame being produced (its features are those of frame − 1's states).
    pub frame: u32,
    /// `commit.wgsl`: the record buffer's frame slot for this step (`u32::MAX`: none).
    pub record_slot: u32,
}

impl FeatureParams {
    pub fn new(rows: u32, steps_done: u32, frame: u32) -> FeatureParams {
        FeatureParams { rows, steps_done, frame, record_slot: u32::MAX }
    }
}

/// Who a row is, for `features.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AgentInfo {
    /// 0 car, 1 bus, 2 truck, 3 pedestrian.
    pub kind: u32,
    pub length_m: f32,
    pub width_m: f32,
    /// The route-intent draw.
    pub intent: u32,
    /// The recorded signal: 0 red, 1 amber, 2 green, 3 none.
    pub recorded_signal: u32,
    /// States in the initial history ring (1..=11).
    pub hist_len0: u32,
    /// The rows of the agent's (scenario, sample), in agent order: `members[off..off + n]`.
    pub members_off: u32,
    pub members_n: u32,
    /// The agent's index in its (scenario, sample).
    pub index: u32,
    /// Time of frame 0 (s); frame `f`'s features use `time0_s + 0.1 (f − 1)`.
    pub time0_s: f32,
    /// A scripted agent's states (`commit.wgsl`): `scripts[off..off + len]`, frame `f`
    /// taking `min(f − 1, len − 1)`; `script_len` 0: the model moves it.
    pub script_off: u32,
    pub script_len: u32,
}

/// `mask.wgsl`: which feasibility masks apply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MaskParams {
    pub collision: u32,
    pub offroad: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// `mask.wgsl`: how an agent brakes in the other agents' collision masks (written by its
/// `make_ghosts` entry point, read by `main`; the rule of `swm_model::rollout`'s
/// `their_braking_states`). Only the device reads and writes it: the host sizes its buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MaskGhost {
    /// The route's paths (the first `n`).
    pub paths: [u32; 8],
    /// Where each path starts along the route from the matched point (m).
    pub starts_m: [f32; 8],
    /// Paths followed (0: the agent brakes straight on).
    pub n: u32,
    /// The route's centre line at the match, relative to the agent's position (m).
    pub q0_x_m: f32,
    pub q0_y_m: f32,
    /// The line's unit direction there.
    pub d0_x: f32,
    pub d0_y: f32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// A shared struct's Rust layout: `(WGSL struct name, size in bytes, [(field, offset)])`.
pub type StructLayout = (&'static str, usize, Vec<(&'static str, usize)>);

macro_rules! layout {
    ($t:ident { $($f:ident),* $(,)? }) => {
        (stringify!($t), std::mem::size_of::<$t>(), vec![$((stringify!($f), std::mem::offset_of!($t, $f))),*])
    };
}

/// Every struct shared with WGSL, for the layout test.
pub fn shared_layouts() -> Vec<StructLayout> {
    vec![
        layout!(PhiloxTestParams { rows, _pad0, _pad1, _pad2 }),
        layout!(LinearParams {
            m,
            n,
            k,
            relu,
            a_offset,
            a_group_rows,
            a_group_stride,
            a_row_stride,
            w_offset,
            b_offset,
            c_offset,
            c_stride,
            tiles_n,
            _pad0,
            _pad1,
            _pad2
        }),
        layout!(NbrParams { agents, feature_dim, ego_dim, x_stride, w0_offset, b0_offset, w1t_offset, b1_offset }),
        layout!(SampleParams { agents, step, seed_lo, seed_hi, temperature, top_p, top_k, logit_stride }),
        layout!(AgentKey { scenario, agent, sample, agent_class }),
        layout!(AgentState { x_cell_m, y_cell_m, x_offset_m, y_offset_m, heading_rad, speed_mps, deck_m, _pad1 }),
        layout!(FeatureParams { rows, steps_done, frame, record_slot }),
        layout!(MaskParams { collision, offroad, _pad0, _pad1 }),
        layout!(MaskGhost { paths, starts_m, n, q0_x_m, q0_y_m, d0_x, d0_y, _pad0, _pad1, _pad2 }),
        layout!(AgentInfo {
            kind,
            length_m,
            width_m,
            intent,
            recorded_signal,
            hist_len0,
            members_off,
            members_n,
            index,
            time0_s,
            script_off,
            script_len
        }),
    ]
}
