//! Fixed-time signal plans, generated from the twin's geometry.
//!
//! # The default plan (one per [`swm_twin::Signal`])
//! * **Approaches**: the signal's controlled incoming lanes are grouped by the heading of
//!   their last metres; headings within 45° form one approach. Approaches whose headings
//!   are opposite (within 45° of 180°) share an **axis**. Axes are ordered by the angle of
//!   their first approach (deterministic).
//! * **Phases**, like Korean junctions: for every axis a *through* phase (straight and
//!   right-turn connections of its approaches) then a *protected left* phase (connections
//!   turning `Left`, `SharpLeft`, `SlightLeft` or `UTurn`). A phase with no movement is
//!   dropped. Right turns on red are **not** allowed in the default plan. A junction with
//!   more than [`MAX_AXES`] axes (skewed or many-armed) merges the axes nearest in
//!   direction until two remain, so a plan has at most four phases.
//! * **Green**: `20 s + 4 s` per controlled lane of the phase beyond the first, capped at
//!   40 s (left phases: 12-25 s); then amber [`AMBER_S`] and all-red [`ALL_RED_S`].
//! * **Cycle cap**: when a plan's cycle exceeds [`MAX_CYCLE_S`], every green is scaled down
//!   to fit (rounded to whole seconds, at least [`MIN_GREEN_S`]).
//! * **Two-arm signals** (mid-block pedestrian signals, or a single approach axis without
//!   turns to separate) get a vehicle phase (30 s) and a pedestrian phase (all vehicle
//!   movements red, [`PED_PHASE_S`]).
//! * **Internal lanes** of an intersection that spans several junction nodes (dual
//!   carriageways: lanes that start at a junction of the same signal) are clearance lanes:
//!   always green, so vehicles inside the box leave it; they still yield by conflict-zone
//!   reservation like everyone else. So is a signalled lane shorter than [`SHORT_LINK_M`]
//!   that starts at another junction (the junctions act as one box).
//! * **Offsets**: each signal's cycle is shifted by a whole number of seconds drawn from the
//!   run seed (`CounterRng` stream [`OFFSET_STREAM`]).
//! * **Pedestrians**: a crossing is green only when every signalled (non-internal) lane it
//!   crosses is red now and stays red for at least [`PED_CLEAR_S`].

use swm_core::rng::CounterRng;
use swm_twin::{Turn, Twin};

use crate::SignalState;

/// Amber after every green (s).
pub const AMBER_S: f64 = 3.0;
/// All-red after every amber (s).
pub const ALL_RED_S: f64 = 2.0;
/// The pedestrian phase of two-arm signals (s).
pub const PED_PHASE_S: f64 = 25.0;
/// A crossing is green only when its lanes stay red this long (s).
pub const PED_CLEAR_S: f64 = 8.0;
/// A signalled lane shorter than this (m) that starts at another junction is a clearance
/// lane too: no vehicle can wait on it clear of both junctions.
pub const SHORT_LINK_M: f64 = 15.0;
/// Longest cycle (s): greens are shortened (not below [`MIN_GREEN_S`]) to fit.
pub const MAX_CYCLE_S: f64 = 100.0;
/// Most approach axes of a plan (each gets a through and a protected-left phase).
pub const MAX_AXES: usize = 2;
/// Shortest green after shortening (s).
pub const MIN_GREEN_S: f64 = 8.0;
/// The rng stream of signal offsets.
pub const OFFSET_STREAM: u64 = 0x5160_0001;

/// One phase of a plan: a green window, then amber, then all-red.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub green_s: f64,
    pub amber_s: f64,
    pub all_red_s: f64,
    /// True for the pedestrian phase of a two-arm signal (no vehicle movement).
    pub pedestrian: bool,
}

/// The fixed-time plan of one signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub phases: Vec<Phase>,
    /// Start of every phase within the cycle (s).
    pub starts_s: Vec<f64>,
    pub cycle_s: f64,
    pub offset_s: f64,
}

impl Plan {
    fn new(phases: Vec<Phase>, offset_s: f64) -> Plan {
        let mut starts_s = Vec::with_capacity(phases.len());
        let mut t = 0.0;
        for p in &phases {
            starts_s.push(t);
            t += p.green_s + p.amber_s + p.all_red_s;
        }
        Plan { phases, starts_s, cycle_s: t.max(1.0), offset_s }
    }

    /// The state of phase `phase` at `time_s`.
    pub fn phase_state(&self, phase: usize, time_s: f64) -> SignalState {
        let local = (time_s + self.offset_s).rem_euclid(self.cycle_s);
        let p = &self.phases[phase];
        let dt = local - self.starts_s[phase];
        if (0.0..p.green_s).contains(&dt) {
            SignalState::Green
        } else if (p.green_s..p.green_s + p.amber_s).contains(&dt) {
            SignalState::Amber
        } else {
            SignalState::Red
        }
    }

    /// Seconds from `time_s` until phase `phase` next leaves green/amber (0 when red).
    pub fn remaining_go_s(&self, phase: usize, time_s: f64) -> f64 {
        let local = (time_s + self.offset_s).rem_euclid(self.cycle_s);
        let p = &self.phases[phase];
        let dt = local - self.starts_s[phase];
        if (0.0..p.green_s + p.amber_s).contains(&dt) { p.green_s + p.amber_s - dt } else { 0.0 }
    }

    /// Seconds from `time_s` until phase `phase` next turns green (0 while green).
    pub fn green_in_s(&self, phase: usize, time_s: f64) -> f64 {
        let local = (time_s + self.offset_s).rem_euclid(self.cycle_s);
        let dt = (local - self.starts_s[phase]).rem_euclid(self.cycle_s);
        if dt < self.phases[phase].green_s { 0.0 } else { self.cycle_s - dt }
    }
}

/// What a lane's signal state is made of ([`SignalController::lane_signal_source`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneSignalSource {
    /// An internal clearance lane, or one with a clearance movement: always green.
    AlwaysGreen,
    /// `(plan, phase)` of every signalled movement leaving the lane.
    Phases(Vec<(u32, u32)>),
}

/// How a connection is controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnControl {
    /// Not signalised.
    None,
    /// Always green (internal clearance lane of a multi-node intersection).
    Clearance,
    /// `(signal, phase)`.
    Phase(u32, u32),
}

/// The signal plans of a twin and the state of every lane, connection and crossing.
#[derive(Clone, Debug)]
pub struct SignalController {
    /// One plan per `Twin::signals` entry.
    pub plans: Vec<Plan>,
    conn: Vec<ConnControl>,
    /// Per lane: the connections leaving it (indices into `Twin::lane_connections`).
    lane_conns: Vec<Vec<u32>>,
    /// Per lane: controlled by a signal (and not a clearance lane).
    lane_signal: Vec<Option<u32>>,
    lane_clearance: Vec<bool>,
}

fn is_left(t: Turn) -> bool {
    matches!(t, Turn::Left | Turn::SharpLeft | Turn::SlightLeft | Turn::UTurn)
}

fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
}

/// Heading (rad) of a lane's last metres.
pub(crate) fn lane_end_heading_rad(twin: &Twin, lane: u32) -> f64 {
    let c = &twin.lanes[lane as usize].centerline;
    let n = c.len();
    if n < 2 {
        return 0.0;
    }
    let b = c[n - 1];
    // Walk back ~10 m.
    let mut a = c[n - 2];
    let mut acc = 0.0;
    for k in (0..n - 1).rev() {
        a = c[k];
        acc += ((c[k + 1][0] - c[k][0]).powi(2) + (c[k + 1][1] - c[k][1]).powi(2)).sqrt();
        if acc >= 10.0 {
            break;
        }
    }
    (b[1] - a[1]).atan2(b[0] - a[0])
}

impl SignalController {
    /// Plans for every signal of `twin`, offsets drawn from `seed`.
    pub fn new(twin: &Twin) -> Self {
        Self::with_seed(twin, 0)
    }

    /// Plans for every signal of `twin`, with per-signal offsets drawn from `seed`.
    pub fn with_seed(twin: &Twin, seed: u64) -> Self {
        let nl = twin.lanes.len();
        let mut lane_conns: Vec<Vec<u32>> = vec![Vec::new(); nl];
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            if (c.from_lane as usize) < nl {
                lane_conns[c.from_lane as usize].push(ci as u32);
            }
        }
        let mut conn = vec![ConnControl::None; twin.lane_connections.len()];
        let mut lane_signal: Vec<Option<u32>> = vec![None; nl];
        let mut lane_clearance = vec![false; nl];
        let mut rng = CounterRng::new(seed, OFFSET_STREAM);
        let mut plans = Vec::with_capacity(twin.signals.len());
        for (si, sig) in twin.signals.iter().enumerate() {
            let mut lanes: Vec<u32> = sig.lanes.iter().copied().filter(|l| (*l as usize) < nl).collect();
            lanes.sort_unstable();
            lanes.dedup();
            // Clearance lanes: start at a junction whose incoming lanes belong to this signal.
            let mut controlled = Vec::new();
            for &l in &lanes {
                let lane = &twin.lanes[l as usize];
                let internal = lane.from_junction.is_some_and(|fj| {
                    twin.junctions.get(fj as usize).is_some_and(|j| {
                        j.incoming_lanes.iter().any(|il| lanes.binary_search(il).is_ok())
                            || lane.length_m < SHORT_LINK_M
                    })
                });
                if internal {
                    lane_clearance[l as usize] = true;
                    for &c in &lane_conns[l as usize] {
                        conn[c as usize] = ConnControl::Clearance;
                    }
                } else {
                    lane_signal[l as usize] = Some(si as u32);
                    controlled.push(l);
                }
            }
            // Approaches by heading.
            let mut approaches: Vec<(f64, Vec<u32>)> = Vec::new();
            for &l in &controlled {
                let h = lane_end_heading_rad(twin, l);
                match approaches.iter_mut().find(|(a, _)| angle_diff(*a, h) < std::f64::consts::FRAC_PI_4) {
                    Some((_, v)) => v.push(l),
                    None => approaches.push((h, vec![l])),
                }
            }
            // Axes: opposite approaches together.
            let mut axes: Vec<Vec<usize>> = Vec::new();
            for i in 0..approaches.len() {
                let h = approaches[i].0;
                match axes.iter_mut().find(|ax| {
                    ax.len() == 1
                        && (angle_diff(approaches[ax[0]].0, h + std::f64::consts::PI) < std::f64::consts::FRAC_PI_4)
                }) {
                    Some(ax) => ax.push(i),
                    None => axes.push(vec![i]),
                }
            }
            axes.sort_by(|a, b| approaches[a[0]].0.total_cmp(&approaches[b[0]].0));
            // At most MAX_AXES axes (4 phases): a skewed or many-armed junction's extra axes
            // join the axis nearest in direction (modulo 180°), as their movements run
            // together in Korean plans; conflict zones still order them.
            while axes.len() > MAX_AXES {
                let axis_dir = |ax: &Vec<usize>| approaches[ax[0]].0.rem_euclid(std::f64::consts::PI);
                let mut best = (f64::INFINITY, 0, 1);
                for i in 0..axes.len() {
                    for j in i + 1..axes.len() {
                        let d = angle_diff(2.0 * axis_dir(&axes[i]), 2.0 * axis_dir(&axes[j]));
                        if d < best.0 {
                            best = (d, i, j);
                        }
                    }
                }
                let merged = axes.remove(best.2);
                axes[best.1].extend(merged);
            }
            let offset_draw = rng.range_i64(0, 119) as f64;
            let mut phases = Vec::new();
            // Assign connections.
            let turn_split = axes.len() >= 2;
            if !turn_split {
                // Two-arm (or one-axis) signal: one vehicle phase and a pedestrian phase.
                phases.push(Phase { green_s: 30.0, amber_s: AMBER_S, all_red_s: ALL_RED_S, pedestrian: false });
                for &l in &controlled {
                    for &c in &lane_conns[l as usize] {
                        conn[c as usize] = ConnControl::Phase(si as u32, 0);
                    }
                }
                phases.push(Phase { green_s: PED_PHASE_S, amber_s: 0.0, all_red_s: ALL_RED_S, pedestrian: true });
            } else {
                for ax in &axes {
                    let lanes_of_axis: Vec<u32> = ax.iter().flat_map(|&a| approaches[a].1.iter().copied()).collect();
                    for left_phase in [false, true] {
                        let mut n_lanes = 0usize;
                        let pi = phases.len() as u32;
                        for &l in &lanes_of_axis {
                            let mut any = false;
                            for &c in &lane_conns[l as usize] {
                                if is_left(twin.lane_connections[c as usize].turn) == left_phase {
                                    conn[c as usize] = ConnControl::Phase(si as u32, pi);
                                    any = true;
                                }
                            }
                            n_lanes += any as usize;
                        }
                        if n_lanes == 0 {
                            continue;
                        }
                        let extra = (n_lanes as f64 - 1.0).max(0.0) * 4.0;
                        let green_s = if left_phase { (12.0 + extra).min(25.0) } else { (20.0 + extra).min(40.0) };
                        phases.push(Phase { green_s, amber_s: AMBER_S, all_red_s: ALL_RED_S, pedestrian: false });
                    }
                }
            }
            if phases.is_empty() {
                phases.push(Phase { green_s: 30.0, amber_s: AMBER_S, all_red_s: ALL_RED_S, pedestrian: false });
            }
            // Many-armed junctions: shorten the greens so that no red outlasts a cycle of
            // MAX_CYCLE_S (a queue's head must not wait minutes).
            let cycle: f64 = phases.iter().map(|p| p.green_s + p.amber_s + p.all_red_s).sum();
            if cycle > MAX_CYCLE_S {
                let fixed: f64 = phases.iter().map(|p| p.amber_s + p.all_red_s).sum();
                let greens: f64 = phases.iter().map(|p| p.green_s).sum();
                let k = ((MAX_CYCLE_S - fixed) / greens.max(1.0)).clamp(0.0, 1.0);
                for p in phases.iter_mut() {
                    p.green_s = (p.green_s * k).max(MIN_GREEN_S).round();
                }
            }
            let plan = Plan::new(phases, 0.0);
            let offset_s = offset_draw.rem_euclid(plan.cycle_s.floor().max(1.0));
            plans.push(Plan { offset_s, ..plan });
        }
        SignalController { plans, conn, lane_conns, lane_signal, lane_clearance }
    }

    /// The state of a connection's movement (`None` when not signalised).
    pub fn connection_state(&self, conn_index: u32, time_s: f64) -> Option<SignalState> {
        match self.conn.get(conn_index as usize)? {
            ConnControl::None => None,
            ConnControl::Clearance => Some(SignalState::Green),
            ConnControl::Phase(s, p) => Some(self.plans[*s as usize].phase_state(*p as usize, time_s)),
        }
    }

    /// Whether the connection's movement may enter now (its phase is green, or it is not
    /// signalised).
    pub fn connection_allowed(&self, conn_index: u32, time_s: f64) -> bool {
        !matches!(self.connection_state(conn_index, time_s), Some(SignalState::Red | SignalState::Amber))
    }

    /// Seconds of green+amber left for a connection (infinite when not signalised or
    /// clearance; 0 when red).
    pub fn connection_go_remaining_s(&self, conn_index: u32, time_s: f64) -> f64 {
        match self.conn.get(conn_index as usize) {
            Some(ConnControl::Phase(s, p)) => self.plans[*s as usize].remaining_go_s(*p as usize, time_s),
            _ => f64::INFINITY,
        }
    }

    /// Seconds until a connection's movement may next enter (0 when it may now: green, not
    /// signalised or clearance).
    pub fn connection_green_in_s(&self, conn_index: u32, time_s: f64) -> f64 {
        match self.conn.get(conn_index as usize) {
            Some(ConnControl::Phase(s, p)) => self.plans[*s as usize].green_in_s(*p as usize, time_s),
            _ => 0.0,
        }
    }

    /// The state of the signal ahead on `lane` (`None` when no signal controls it): green
    /// when one of its movements is green, amber when one is amber, else red.
    pub fn lane_state(&self, lane: u32, time_s: f64) -> Option<SignalState> {
        let l = lane as usize;
        if *self.lane_clearance.get(l)? {
            return Some(SignalState::Green);
        }
        self.lane_signal[l]?;
        let mut best = SignalState::Red;
        for &c in &self.lane_conns[l] {
            match self.connection_state(c, time_s) {
                Some(SignalState::Green) => return Some(SignalState::Green),
                Some(SignalState::Amber) => best = SignalState::Amber,
                _ => {}
            }
        }
        Some(best)
    }

    /// How [`SignalController::lane_state`] of `lane` is made, for engines that recompute it
    /// elsewhere (the GPU rollouts): `None` when no signal controls the lane (as
    /// `lane_state`), else always green or the `(plan, phase)` of each of its signalled
    /// movements (green when one is green, amber when one is amber, else red).
    pub fn lane_signal_source(&self, lane: u32) -> Option<LaneSignalSource> {
        let l = lane as usize;
        if *self.lane_clearance.get(l)? {
            return Some(LaneSignalSource::AlwaysGreen);
        }
        self.lane_signal[l]?;
        let mut phases = Vec::new();
        for &c in &self.lane_conns[l] {
            match self.conn.get(c as usize) {
                Some(ConnControl::Clearance) => return Some(LaneSignalSource::AlwaysGreen),
                Some(ConnControl::Phase(s, p)) => phases.push((*s, *p)),
                Some(ConnControl::None) | None => {}
            }
        }
        Some(LaneSignalSource::Phases(phases))
    }

    /// The pedestrian signal of a crossing that cuts `crossed_lanes`: green only when every
    /// signalled lane among them is red now and for the next [`PED_CLEAR_S`]; `None` when
    /// none of them has a signal.
    pub fn pedestrian_state(&self, crossed_lanes: &[u32], time_s: f64) -> Option<SignalState> {
        let signalled: Vec<u32> = crossed_lanes
            .iter()
            .copied()
            .filter(|l| self.lane_signal.get(*l as usize).copied().flatten().is_some())
            .collect();
        if signalled.is_empty() {
            return None;
        }
        // Phase boundaries are whole seconds plus the offset; sampling at 0.25 s is exact
        // enough for an 8 s window.
        let mut k = 0.0;
        while k <= PED_CLEAR_S + 1e-9 {
            if signalled.iter().any(|l| self.lane_state(*l, time_s + k) != Some(SignalState::Red)) {
                return Some(SignalState::Red);
            }
            k += 0.25;
        }
        Some(SignalState::Green)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(green_s: f64) -> Phase {
        Phase { green_s, amber_s: AMBER_S, all_red_s: ALL_RED_S, pedestrian: false }
    }

    #[test]
    fn green_in_counts_to_the_next_green_start_with_the_offset() {
        // Phases: 0 green 0..20, amber ..23, all-red ..25; 1 green 25..37, ..40, ..42.
        let plan = Plan::new(vec![phase(20.0), phase(12.0)], 0.0);
        assert_eq!(plan.cycle_s, 42.0);
        assert_eq!(plan.green_in_s(0, 5.0), 0.0);
        assert_eq!(plan.green_in_s(0, 21.0), 21.0);
        assert_eq!(plan.green_in_s(1, 0.0), 25.0);
        assert_eq!(plan.green_in_s(1, 30.0), 0.0);
        assert_eq!(plan.green_in_s(1, 38.0), 29.0);
        // Every second of a cycle: a phase is green exactly when green_in is 0, and green
        // `green_in` seconds later.
        let shifted = Plan { offset_s: 7.0, ..plan };
        for k in 0..84 {
            let t = k as f64 + 0.5;
            for p in 0..2 {
                let g = shifted.green_in_s(p, t);
                assert_eq!(g == 0.0, shifted.phase_state(p, t) == SignalState::Green, "phase {p} at {t}");
                assert_eq!(shifted.phase_state(p, t + g), SignalState::Green, "phase {p} at {t} + {g}");
                if g > 0.5 {
                    assert_ne!(shifted.phase_state(p, t + g - 0.5), SignalState::Green, "phase {p} at {t} + {g}");
                }
            }
        }
    }
}
