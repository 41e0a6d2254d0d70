//! Agent features on the GPU (`shaders/features.wgsl`): feature layout 1 of
//! `swm_model::features`, computed for every agent of every (scenario, sample) at once from
//! a history ring of [`AgentState`]s that stays on the device.
//!
//! * [`GpuMap`]: the model's map (`swm_model::map::MapContext`) packed once into one buffer
//!   of 32-bit words: the paths (points relative to a whole-metre anchor per path, cumulative
//!   lengths, speed limits, stop lines, successors), a uniform grid of path segments for
//!   path matching (every segment within [`MATCH_RADIUS_M`] of a cell is listed in it), the
//!   class raster (4 classes a word) and, with `SignalSource::Plans`, the fixed-time plans
//!   and what each lane's state is made of (`swm_sim::signal::LaneSignalSource`), and the
//!   drivable-area bitmap of the off-road mask (`swm_model::map::Drivable`).
//! * [`GpuFeatures`]: the kernel; one invocation per agent; neighbours are searched among
//!   the agents of the same (scenario, sample) (`AgentInfo::members_off`).
//!
//! **Precision.** Every geometric difference is taken as whole metres (`i32`) plus an f32
//! offset, so features keep ~1e-6 m kilometres from the origin; features agree with the CPU
//! (f64) within 1e-4 except where the CPU sits on a discontinuity: a ray sample on a pixel
//! edge (within ~1e-6 m), a path-match or neighbour-order tie, a signal phase boundary at
//! exactly the step's time (times are f32 here). `tests/features.rs` counts those rows.
//!
//! **History ring.** `hist[slot * rows + row]`, 11 slots (`HISTORY_STEPS` + 1); after `k`
//! steps the state `a` steps old is in slot `(10 + k − a) mod 11`, for every agent (agents
//! with a shorter recorded history leave their oldest slots unused: `AgentInfo::hist_len0`).

use swm_model::features::{FEATURE_DIM, HISTORY_STEPS};
use swm_model::map::{MapContext, SignalSource};
use swm_model::rollout::RolloutAgent;
use swm_sim::signal::LaneSignalSource;
use swm_sim::{AgentKind, SignalState};

use crate::context::dispatch;
use crate::layout::{AgentInfo, AgentState, FeatureParams};
use crate::{GpuContext, GpuError, shaders};

/// Path-matching radius of the features (m), as `swm_model::features`.
pub const MATCH_RADIUS_M: f64 = 6.0;
/// Slots of the history ring.
pub const HISTORY_SLOTS: u32 = HISTORY_STEPS as u32 + 1;
/// Side of a path-grid cell (m).
const GRID_CELL_M: f64 = 16.0;
/// Words of the map header (`features.wgsl`: `H_*`).
const HEADER_WORDS: usize = 48;
/// No lane / no stop line.
const NONE: u32 = u32::MAX;

/// The ring slot holding the state `age` steps old after `steps_done` steps.
pub fn history_slot(steps_done: u32, age: u32) -> u32 {
    (HISTORY_SLOTS - 1 + steps_done - age) % HISTORY_SLOTS
}

/// The feature kernel's code of a signal state (`3`: none).
pub fn signal_code(s: Option<SignalState>) -> u32 {
    match s {
        Some(SignalState::Red) => 0,
        Some(SignalState::Amber) => 1,
        Some(SignalState::Green) => 2,
        None => 3,
    }
}

/// The feature kernel's code of an agent kind (the one-hot's index).
pub fn kind_code(k: AgentKind) -> u32 {
    match k {
        AgentKind::Car => 0,
        AgentKind::Bus => 1,
        AgentKind::Truck => 2,
        AgentKind::Pedestrian => 3,
    }
}

/// Splits a coordinate into whole metres and an f32 offset in `[0, 1)`.
fn split(v: f64) -> (i32, f32) {
    let cell = v.floor();
    let off = (v - cell) as f32;
    if off >= 1.0 { (cell as i32 + 1, 0.0) } else { (cell as i32, off) }
}

/// The model's map on the device (module docs).
pub struct GpuMap {
    pub words: wgpu::Buffer,
    /// Words uploaded (for reports).
    pub len_words: usize,
}

/// Builds the packed words of `map` (module docs; `features.wgsl` reads them).
pub fn pack_map(map: &MapContext) -> Result<Vec<u32>, GpuError> {
    let f = |v: f64| (v as f32).to_bits();
    let mut w = vec![0u32; HEADER_WORDS];
    let too_big = |what: &str| GpuError::Input(format!("map too large for 32-bit offsets: {what}"));
    let idx = |n: usize, what: &str| u32::try_from(n).map_err(|_| too_big(what));

    // Paths: 12 words each; points: x, y (relative to the path's anchor), s.
    let n_paths = map.paths.len();
    let paths_off = w.len();
    w.resize(paths_off + 12 * n_paths, 0);
    let mut pts: Vec<u32> = Vec::new();
    let mut succ: Vec<u32> = Vec::new();
    for (pi, p) in map.paths.iter().enumerate() {
        let first = p.points.iter().find(|q| q[0].is_finite() && q[1].is_finite()).copied().unwrap_or([0.0, 0.0]);
        let (ax, ay) = (first[0].floor(), first[1].floor());
        let base = paths_off + 12 * pi;
        w[base] = (ax as i32) as u32;
        w[base + 1] = (ay as i32) as u32;
        w[base + 2] = idx(pts.len() / 3, "path points")?;
        w[base + 3] = idx(p.points.len(), "path points")?;
        w[base + 4] = f(p.length_m);
        w[base + 5] = f(p.speed_limit_mps);
        w[base + 6] = p.stop_s_m.map_or(NONE, |s| (s as f32).to_bits());
        w[base + 7] = p.lane.unwrap_or(NONE);
        w[base + 8] = idx(succ.len(), "successors")?;
        w[base + 9] = idx(p.successors.len(), "successors")?;
        w[base + 10] = u32::from(p.stop_s_m.is_some());
        // The deck at the start and at the end, in decimetres (i16 each; `map.wgsl`'s
        // `path_deck`).
        let dm = |d: f64| u32::from((d * 10.0).round().clamp(-32768.0, 32767.0) as i16 as u16);
        let [d0, d1] = map.path_deck_m(pi as u32);
        w[base + 11] = dm(d0) | dm(d1) << 16;
        for (q, s) in p.points.iter().zip(&p.s_m) {
            pts.extend([f(q[0] - ax), f(q[1] - ay), f(*s)]);
        }
        succ.extend(&p.successors);
    }
    let pts_off = w.len();
    w.extend(&pts);
    let succ_off = w.len();
    w.extend(&succ);

    // The segment grid.
    let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for p in &map.paths {
        for q in p.points.iter().filter(|q| q[0].is_finite() && q[1].is_finite()) {
            bb = [bb[0].min(q[0]), bb[1].min(q[1]), bb[2].max(q[0]), bb[3].max(q[1])];
        }
    }
    let (gx0, gy0, nx, ny) = if bb[0].is_finite() {
        let gx0 = (bb[0] - MATCH_RADIUS_M - 1.0).floor();
        let gy0 = (bb[1] - MATCH_RADIUS_M - 1.0).floor();
        let nx = ((bb[2] + MATCH_RADIUS_M + 1.0 - gx0) / GRID_CELL_M).ceil().max(1.0) as usize;
        let ny = ((bb[3] + MATCH_RADIUS_M + 1.0 - gy0) / GRID_CELL_M).ceil().max(1.0) as usize;
        (gx0, gy0, nx, ny)
    } else {
        (0.0, 0.0, 0, 0)
    };
    if nx.saturating_mul(ny) > 64 << 20 {
        return Err(too_big("segment grid"));
    }
    let mut cells: Vec<Vec<[u32; 2]>> = vec![Vec::new(); nx * ny];
    for (pi, p) in map.paths.iter().enumerate() {
        for (i, s) in p.points.windows(2).enumerate() {
            let (a, b) = (s[0], s[1]);
            if !(a.iter().chain(&b).all(|v| v.is_finite())) {
                continue;
            }
            let r = MATCH_RADIUS_M + 0.01;
            let c0 = ((a[0].min(b[0]) - r - gx0) / GRID_CELL_M).floor().max(0.0) as usize;
            let c1 = (((a[0].max(b[0]) + r - gx0) / GRID_CELL_M).floor() as usize).min(nx - 1);
            let r0 = ((a[1].min(b[1]) - r - gy0) / GRID_CELL_M).floor().max(0.0) as usize;
            let r1 = (((a[1].max(b[1]) + r - gy0) / GRID_CELL_M).floor() as usize).min(ny - 1);
            for row in r0..=r1 {
                for col in c0..=c1 {
                    cells[row * nx + col].push([pi as u32, i as u32]);
                }
            }
        }
    }
    let grid_start_off = w.len();
    let mut acc = 0u32;
    for c in &cells {
        w.push(acc);
        acc = acc.checked_add(idx(c.len(), "segment grid")?).ok_or_else(|| too_big("segment grid"))?;
    }
    w.push(acc);
    let grid_ent_off = w.len();
    for c in &cells {
        for e in c {
            w.extend(e);
        }
    }

    // The class raster, 4 pixels a word (unknown classes read as ground, as `class_at`).
    let raster_off = w.len();
    let n_px = map.width * map.height;
    for chunk in map.classes()[..n_px.min(map.classes().len())].chunks(4) {
        let mut word = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            let c = if c <= 8 { u32::from(c) } else { 0 };
            word |= c << (8 * k);
        }
        w.push(word);
    }

    // Signal plans.
    let (mut lane_sig_off, mut n_lanes, mut lane_ph_off, mut plans_off, mut phases_off) = (0, 0, 0, 0, 0);
    let has_plans = if let SignalSource::Plans(ctl) = &map.signals {
        n_lanes = map.paths.iter().filter_map(|p| p.lane).map(|l| l as usize + 1).max().unwrap_or(0);
        plans_off = w.len();
        let mut phase_base = 0usize;
        for plan in &ctl.plans {
            w.extend([f(plan.cycle_s), f(plan.offset_s), idx(phase_base, "phases")?]);
            phase_base += plan.phases.len();
        }
        phases_off = w.len();
        for plan in &ctl.plans {
            for (ph, start) in plan.phases.iter().zip(&plan.starts_s) {
                w.extend([f(*start), f(ph.green_s), f(ph.amber_s)]);
            }
        }
        let mut lane_words = Vec::with_capacity(2 * n_lanes);
        let mut movements: Vec<u32> = Vec::new();
        for lane in 0..n_lanes {
            match ctl.lane_signal_source(lane as u32) {
                None => lane_words.extend([0, 0]),
                Some(LaneSignalSource::AlwaysGreen) => lane_words.extend([1, 0]),
                Some(LaneSignalSource::Phases(v)) => {
                    lane_words.extend([2 | (idx(v.len(), "movements")? << 2), idx(movements.len() / 2, "movements")?]);
                    for (s, p) in v {
                        movements.extend([s, p]);
                    }
                }
            }
        }
        lane_sig_off = w.len();
        w.extend(&lane_words);
        lane_ph_off = w.len();
        w.extend(&movements);
        true
    } else {
        false
    };

    // The drivable-area bitmap (bit k: word k / 32, bit k % 32, as the CPU's u64 words).
    let drive_off = w.len();
    let mut drive_header = [0u32; 10];
    if let Some(d) = &map.drivable {
        for &b in &d.bits {
            w.extend([b as u32, (b >> 32) as u32]);
        }
        let (dcx, dox) = split(d.origin_m[0]);
        let (dcy, doy) = split(d.origin_m[1]);
        let per_m = 1.0 / d.res_m;
        let cells_per_m = if per_m.fract() == 0.0 && (1.0..=64.0).contains(&per_m) { per_m as u32 } else { 0 };
        drive_header = [
            idx(drive_off, "map")?,
            idx(d.nx, "drivable")?,
            idx(d.ny, "drivable")?,
            dcx as u32,
            dcy as u32,
            dox.to_bits(),
            doy.to_bits(),
            f(d.res_m),
            cells_per_m,
            1,
        ];
    }
    // The exact test of points in cells not wholly drivable (`swm_twin::drivable::StripIndex`):
    // bucket starts, items, then 7 words a segment (its first end's whole metres, both ends
    // relative to them, the half width).
    let mut exact_header = [0u32; 8];
    if let Some(ex) = map.drivable.as_ref().map(|d| &d.exact) {
        let start_off = w.len();
        w.extend(&ex.start);
        let items_off = w.len();
        w.extend(&ex.items);
        let segs_off = w.len();
        for sg in &ex.segments {
            let (ax, ay) = (sg.a[0].floor(), sg.a[1].floor());
            w.extend([
                (ax as i32) as u32,
                (ay as i32) as u32,
                f(sg.a[0] - ax),
                f(sg.a[1] - ay),
                f(sg.b[0] - ax),
                f(sg.b[1] - ay),
                f(sg.half_width_m),
            ]);
        }
        exact_header = [
            idx(start_off, "map")?,
            idx(items_off, "map")?,
            idx(segs_off, "map")?,
            idx(ex.nx, "drivable buckets")?,
            idx(ex.ny, "drivable buckets")?,
            (ex.origin_m[0] as i32) as u32,
            (ex.origin_m[1] as i32) as u32,
            f(ex.bucket_m),
        ];
    }

    let (rcx, rox) = split(map.origin_m[0]);
    let (rcy, roy) = split(map.origin_m[1]);
    let header: [u32; 26] = [
        idx(paths_off, "map")?,
        idx(n_paths, "paths")?,
        idx(pts_off, "map")?,
        idx(succ_off, "map")?,
        idx(grid_start_off, "map")?,
        idx(grid_ent_off, "map")?,
        nx as u32,
        ny as u32,
        (gx0 as i32) as u32,
        (gy0 as i32) as u32,
        f(GRID_CELL_M),
        u32::from(has_plans),
        idx(raster_off, "map")?,
        idx(map.width, "raster")?,
        idx(map.height, "raster")?,
        f(map.res_m),
        rcx as u32,
        rcy as u32,
        rox.to_bits(),
        roy.to_bits(),
        idx(lane_sig_off, "map")?,
        idx(n_lanes, "lanes")?,
        idx(lane_ph_off, "map")?,
        idx(plans_off, "map")?,
        idx(phases_off, "map")?,
        u32::from(map.res_m == 1.0),
    ];
    w[..header.len()].copy_from_slice(&header);
    w[header.len()..header.len() + drive_header.len()].copy_from_slice(&drive_header);
    let ex0 = header.len() + drive_header.len();
    w[ex0..ex0 + exact_header.len()].copy_from_slice(&exact_header);
    // `H_HAS_LEVELS`: whether path matches keep to the agent's level.
    w[ex0 + exact_header.len()] = u32::from(map.has_levels());
    Ok(w)
}

impl GpuMap {
    /// Packs and uploads `map` (once per twin).
    pub fn new(ctx: &GpuContext, map: &MapContext) -> Result<GpuMap, GpuError> {
        let words = pack_map(map)?;
        ctx.check_size("the packed map", 4 * words.len() as u64)?;
        let len_words = words.len();
        Ok(GpuMap { words: ctx.storage_init("map", &words)?, len_words })
    }
}

/// Rows of a feature batch: who each row is, and every (scenario, sample)'s member rows.
pub struct FeatureRows {
    pub info: Vec<AgentInfo>,
    /// Rows of each instance's agents in agent order (`AgentInfo::members_off`).
    pub members: Vec<u32>,
    /// The initial history ring (`[HISTORY_SLOTS * rows]`).
    pub history: Vec<AgentState>,
}

impl FeatureRows {
    /// Rows for instances of agents: `instances[g] = (agents, their rows, time of frame 0
    /// (s))`; `rows` is the batch size (every row must be named once).
    pub fn new(instances: &[(&[RolloutAgent], &[usize], f64)], rows: usize) -> FeatureRows {
        let mut info = vec![AgentInfo::default(); rows];
        let mut members = Vec::with_capacity(rows);
        let mut history = vec![AgentState::default(); HISTORY_SLOTS as usize * rows];
        for (agents, rws, t0) in instances {
            let off = members.len() as u32;
            members.extend(rws.iter().map(|&r| r as u32));
            for (i, (a, &row)) in agents.iter().zip(rws.iter()).enumerate() {
                let h = &a.history[a.history.len().saturating_sub(HISTORY_SLOTS as usize)..];
                info[row] = AgentInfo {
                    kind: kind_code(a.kind),
                    length_m: a.length_m,
                    width_m: a.width_m,
                    intent: a.intent,
                    recorded_signal: signal_code(a.signal),
                    hist_len0: h.len() as u32,
                    members_off: off,
                    members_n: rws.len() as u32,
                    index: i as u32,
                    time0_s: *t0 as f32,
                    script_off: 0,
                    script_len: 0,
                };
                for (j, k) in h.iter().enumerate() {
                    let age = (h.len() - 1 - j) as u32;
                    history[history_slot(0, age) as usize * rows + row] =
                        AgentState::from_kinematics(k).on_deck(a.deck_m);
                }
            }
        }
        FeatureRows { info, members, history }
    }
}

/// The feature kernel: every row's state now on its deck (`decks`), then the features
/// (`main`), whose neighbours are those on the agent's level.
pub struct GpuFeatures {
    pipeline: wgpu::ComputePipeline,
    decks: wgpu::ComputePipeline,
}

/// The bind groups of [`GpuFeatures`]' two passes.
pub struct FeatureBindings {
    main: wgpu::BindGroup,
    decks: wgpu::BindGroup,
}

impl GpuFeatures {
    pub fn new(ctx: &GpuContext) -> Result<GpuFeatures, GpuError> {
        Ok(GpuFeatures {
            pipeline: ctx.pipeline("features", shaders::FEATURES, "main")?,
            decks: ctx.pipeline("feature decks", shaders::FEATURES, "decks")?,
        })
    }

    /// The bind groups: params uniform, map words, agent info, members, history ring,
    /// features out (`[rows, FEATURE_DIM]`), current states out (`[rows]`, the sampler's
    /// input).
    pub fn bind(&self, ctx: &GpuContext, buffers: [&wgpu::Buffer; 7]) -> FeatureBindings {
        let decks = [0, 1, 2, 4, 6].map(|i| (i as u32, buffers[i]));
        FeatureBindings { main: ctx.bind(&self.pipeline, &buffers), decks: ctx.bind_at(&self.decks, &decks) }
    }

    /// Records the features of `rows` agents: their states now (64 rows a workgroup), then
    /// the features.
    pub fn encode(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, bind: &FeatureBindings, rows: u32) {
        dispatch(ctx, enc, &self.decks, &bind.decks, rows.div_ceil(64));
        dispatch(ctx, enc, &self.pipeline, &bind.main, rows.div_ceil(64));
    }

    /// Features of every row after `steps_done` steps, with the history given (one upload
    /// and read-back; for tests and one-off use). `frame`: the frame being produced (its
    /// time is `time0_s + 0.1 (frame − 1)`).
    pub fn compute(
        &self,
        ctx: &GpuContext,
        map: &GpuMap,
        rows: &FeatureRows,
        steps_done: u32,
        frame: u32,
    ) -> Result<Vec<f32>, GpuError> {
        let n = rows.info.len();
        if rows.history.len() != HISTORY_SLOTS as usize * n {
            return Err(GpuError::Input(format!("{} history states for {n} rows", rows.history.len())));
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let params = ctx.uniform("feature params", &FeatureParams::new(n as u32, steps_done, frame));
        let info = ctx.storage_init("agent info", &rows.info)?;
        let members = ctx.storage_init("members", &rows.members)?;
        let hist = ctx.storage_init("history", &rows.history)?;
        let feats = ctx.storage("features", (n * FEATURE_DIM * 4) as u64)?;
        let cur = ctx.storage("current states", (n * std::mem::size_of::<AgentState>()) as u64)?;
        let bind = self.bind(ctx, [&params, &map.words, &info, &members, &hist, &feats, &cur]);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.encode(ctx, &mut enc, &bind, n as u32);
        ctx.submit_and_wait(enc)?;
        ctx.read(&feats, n * FEATURE_DIM)
    }
}

/// The end of a step (`shaders/commit.wgsl`): new states into the history ring and,
/// optionally, the record buffer.
pub struct GpuCommit {
    pipeline: wgpu::ComputePipeline,
}

impl GpuCommit {
    pub fn new(ctx: &GpuContext) -> Result<GpuCommit, GpuError> {
        Ok(GpuCommit { pipeline: ctx.pipeline("commit", shaders::COMMIT, "main")? })
    }

    /// A bind group: params uniform (shared with the features), new states, history ring,
    /// record buffer (`[frames, rows]`; any buffer when no records are kept), agent info,
    /// scripted states (any buffer when no agent is scripted).
    pub fn bind(&self, ctx: &GpuContext, buffers: [&wgpu::Buffer; 6]) -> wgpu::BindGroup {
        ctx.bind(&self.pipeline, &buffers)
    }

    pub fn encode(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, bind: &wgpu::BindGroup, rows: u32) {
        dispatch(ctx, enc, &self.pipeline, bind, rows.div_ceil(64));
    }
}
