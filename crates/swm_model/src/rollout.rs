//! Closed-loop rollouts on the CPU: every agent of a scenario moved by the model (or from
//! outside) for N steps, S samples per scenario.
//!
//! * **Start**: the agents with a record at frame 0, with their recorded frames −10..=0 as
//!   history (kinematics from the records). Agents that appear later are not simulated.
//! * **Each step** (frame 1..=N): every externally driven agent ([`AgentDriver`]) gets the
//!   state its driver gives; every other agent's features are computed from the state of
//!   all agents at the previous frame (the driven ones included, so the model reacts to
//!   them), the network runs once on the batch of all model-driven agents, a token is
//!   sampled per agent with the keyed generator ([`crate::sampling`], counter `(frame,
//!   agent index, scenario id, sample)`) and the agents advance by the token's kinematics.
//!   Before the agent advances, the token passes the feasibility masks (below).
//! * **Route intents**: one draw per agent and sample (`STREAM_INTENT`, frame 0), mixed with
//!   the path index at every branching.
//! * **Determinism**: one (scenario, sample) is a pure function of its inputs;
//!   [`rollout_scenarios`] steps them in small groups whose model-driven agents share one
//!   network pass per frame (a row's outputs never depend on the batch it comes in:
//!   [`crate::matmul`]), runs the groups in parallel with rayon and returns the rollouts in
//!   (scenario, sample) order, so the bytes are the same whatever the thread count and the
//!   grouping.
//! * **Output records**: `agent_id` is the scenario's agent id, `step` is the scenario's
//!   current step + frame, `time_s` its current time + 0.1·frame, `z_m` the terrain's
//!   elevation plus the agent's deck ([`RolloutAgent::deck_m`], [`MapContext::elevation_on`];
//!   a vehicle on a bridge is recorded above the road under it, and on a connection between
//!   levels on its ramp, as the teacher records it), `accel_mps2` the last step's speed
//!   change, `lane` the matched lane (vehicles; `None` in junctions), `signal` the state
//!   features used.
//! * **Levels**: a vehicle's path matches (records, features, the masks' route) keep to the
//!   paths on its deck's level ([`MapContext::match_path_on`]): a car in a tunnel never
//!   takes the road above it, however close in plan (it did before session 40: its record
//!   then jumped onto the road above, where the metrics saw it meet the cars there).
//!
//! # Feasibility masks ([`FeasibilityMask`], both on by default)
//! Physical consistency a learned policy may legitimately rely on at rollout time (as
//! kinematic limits are): not teacher data, not a planner. For an agent, a token is
//! * **collision-feasible** when, after the token's step, the agent can still brake
//!   without its box touching another agent's: one of its **escapes**, the states after
//!   the token and then braking at [`MASK_BRAKE_MPS2`] until it stops, must not overlap,
//!   step by step, the other agent's states when it brakes at the same rate from its current
//!   state (its **ghost**, [`assumed_braking_states`]): a moving vehicle on a lane it
//!   follows brakes straight on in its route's frame (along the paths its route intent
//!   picks, at its heading error from them: on a straight lane, straight on), any other
//!   agent straight on (a vehicle in a junction too, where paths cross and its route is one
//!   guess of several). (Before session 41 every ghost braked straight on: on a bend a
//!   car's ghost ran into the lane beside it, and three cars abreast on a bend of Yeouido
//!   weaved into each other.) A vehicle's escapes hold a yaw rate of the vocabulary: the
//!   token's own, the ones on either side of it and straight on, each no sharper than
//!   [`MASK_LATERAL_MPS2`] of lateral acceleration allows at the speed after the token
//!   (else the nearest towards straight on that does: an escape by a hard swerve at speed
//!   would run into the lane beside); with the off-road mask only escapes that keep every
//!   box on the road count (where none of those does, on a bend sharper than that limit,
//!   the first other yaw rate from the token's outwards whose escape does); the token's
//!   level is the best of its escapes'. A pedestrian's escape slows straight at the same
//!   rate, the vocabulary's hardest forward slowing. Every escape is itself a run of
//!   tokens (the hardest braking, holding its yaw rate), so an escape clear of agents that
//!   stand (or brake as assumed) stays available: the next frame, the hardest-braking
//!   token with that yaw rate has the rest of it, and a vehicle that can stop clear of a
//!   standing one never touches it (tested in `tests/model.rs`). The boxes are grown by
//!   0.1 m; where the grown boxes meet but the bare ones do not, the token is **clear only
//!   bare** (a level below clear), and it **hits** where the bare boxes meet, the worse the
//!   earlier the first hit and, among tokens hitting first at the same step, the higher the
//!   token's acceleration (a pedestrian's: its forward velocity change; `hit_level`: where
//!   every token hits, the agent brakes hardest among those that hit last, instead of
//!   driving on as it likes). A candidate
//!   whose grown box overlaps the agent's already is checked with the bare boxes only, and
//!   one whose bare box does is not checked (nothing a token could do about it). A
//!   pedestrian candidate's bare box is grown by [`MASK_PEDESTRIAN_REACH_M`] for the hit
//!   test (where its token may put it in one step, beyond the state assumed: two walkers
//!   each clear of the other's assumed step met by side-stepping at once), or, where the
//!   agent's bare box is within that reach of it already, by the gap between them (less
//!   [`MASK_GROW_GAP_M`]: the agent comes no closer to where the pedestrian is assumed than
//!   it is now; a truck creeping up to a walker 2.6 cm away met it).
//!   **Moves at once**: a vehicle candidate's ghost boxes are grown by its
//!   spread (`ghost_spread`), which covers where it may be instead when its own token this step is
//!   not the hardest braking (the fastest token, turning at up to the yaw rate the
//!   escapes' lateral limit allows, then braking): every agent moves in the same step, so
//!   each keeps clear of where the other may be after its step, not only of where it would
//!   be braking now. The growth is forward and sideways: about 0.1 m one step ahead; by the
//!   lookahead's end (3 s) up to 1.6 m forward and 0.35 m sideways from 10 m/s, 2.7 m and
//!   0.7 m from 30 m/s (tested against the tokens it covers).
//!   Only agents within reach of the lookahead and on the same level (decks now closer
//!   than [`MASK_LEVEL_SEPARATION_M`], 5.5 m: not a bridge above or a road below, but a
//!   car on a ramp below or above, whose deck the agent's converges to) are candidates.
//!   **Candidates** are then narrowed, with the same results: one is kept only where its
//!   circle could meet the agent's in some state compared, the two centres no farther
//!   apart than both circles' radii plus how far each centre can be from where it is now
//!   in those states (`own_reach_m`: the fastest token's step, then braking;
//!   `route_reach_m`: the route continuation; `their_reach_m`: the candidate braking).
//!   Any other agent's boxes never meet the agent's, so it leaves every level clear;
//!   dropping it saves its braking states and its tests (this module's tests check the
//!   reaches and every token's key against the plain search, and the benchmark's
//!   fingerprints hold the records to the same bits).
//!   A vehicle on a path it follows (within [`MASK_ROUTE_MATCH_M`] and
//!   [`MASK_ROUTE_HEADING_RAD`] of it) is also checked **along its route** (the paths its
//!   route intent picks, [`WorldAgent::intent`]): after the token it brakes at the same
//!   rate along the route's centre line, keeping its lateral offset, against the same
//!   ghosts; that level ranks after the escapes' (it is no run of tokens, so it cannot
//!   replace them), and a token is clear only when both are. On a bend, the escapes run
//!   straight on past a vehicle standing in the lane ahead round the bend; the route does
//!   not;
//! * **off-road-feasible** (vehicles): count the box corners (box grown by
//!   [`MASK_OFFROAD_MARGIN_M`]) off the drivable area ([`MapContext::is_drivable`]: lanes
//!   and connections swept by their widths, tested exactly) after the token and after
//!   holding it [`MASK_OFFROAD_HOLD_STEPS`] more steps, and take the larger count. A vehicle
//!   on the road (no corner off now) must keep that count at 0 **and**, after the token, be
//!   able to brake to a stop at [`MASK_BRAKE_MPS2`] holding one of the vocabulary's yaw
//!   rates with every box on the road ([`vehicle_can_brake_on_road`]); a vehicle partly off
//!   must lower the count below its corners off now, and among tokens otherwise alike the
//!   mask keeps those whose corners end up least far off ([`MapContext::off_road_depth`],
//!   summed, the larger of the two states checked). A vehicle already fully off it is not
//!   masked. The braking test makes staying on the road an invariant: if it holds now, the
//!   hardest-braking token with the yaw rate that passed keeps it for the next step, so a
//!   vehicle that can brake on the road when the rollout starts never leaves it (the road
//!   comes first, below; tested in `tests/model.rs`); the held lookahead keeps vehicles from
//!   drifting to where only hard braking is left.
//!
//! The sampled token (uniform: word 0 of the token draw) is kept when it is clear and
//! off-road-feasible. Otherwise the tokens are scored by (off-road score, collision level,
//! route level, off-road depth for a vehicle partly off), compared in that order, the logits
//! of all but the best-scored tokens are set to −∞, and the token is drawn again, with word
//! 1 of the same draw ([`keyed_u32x4`] with [`STREAM_TOKEN`]), by [`sample_token`] under the
//! same settings: the token therefore
//! follows the network's distribution restricted to the best tokens (up to the top-k /
//! top-p cut). The tokens are scored in a fixed order, the **walk**: the hardest braking
//! straight on first, then the others likeliest first (`p = softmax(logits / temperature)`,
//! ties by token). Once a token with the best score possible (clear and on the road: every
//! part 0) has been found and the tokens scored so far with that score hold at least
//! [`MASK_STOP_FRACTION`] of their own mass plus the mass of every token not scored yet,
//! the walk stops and the tokens not scored are masked too. They hold at most about 1 % of
//! the kept mass and are less likely than every token scored (the first aside), so a top-p
//! of 0.95 would cut them anyway: leaving them out moves the normaliser by at most that 1 %.
//! Scoring them was most of the masks' cost (a vehicle's full check kept 59 tokens of 143
//! on average in the benchmark's rollouts, each scored in full). The off-road score comes
//! first because the road is known while the others' braking is a guess. The score is 0
//! for agents the off-road mask leaves alone; for a vehicle on the road it is 0 when feasible, else the
//! corners off at the held lookahead, else (no braking on the road left)
//! `OFFROAD_NO_ESCAPE` plus the corners off after the token; for one partly off, the
//! fewest corners off of the two states checked. Some token always remains, and a vehicle
//! off the road takes the ones that bring it back the most. A token's checks stop as soon
//! as its score is known to be worse than the best one found so far on the walk (the corner
//! counts bound the off-road score before the escape test; the collision level need only be
//! exact up to the best one's): the same tokens are kept as scoring each in full, at a
//! fraction of the cost.
//! [`FeasibilityMask::NONE`] gives the network's distribution as it is
//! ([`rollout_scenarios_masked`]).
//!
//! # Files ([`write_rollouts`])
//! A rollout directory holds `sample-00000.parquet` ... (one per sample, schema
//! `swm-scenarios/1`: `scenario_id`, `frame` 1..=N, then the trajectory columns; ordered by
//! scenario, frame, agent) and `manifest.json` ([`RolloutManifest`]).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use swm_dataset::Scenario;
use swm_sim::{AgentKind, SignalState, TrajectoryRecord};

use crate::ModelError;
use crate::cells::{CELL_INDEX_MIN_AGENTS, CellIndex};
use crate::data::kinematics;
use crate::expf::exp_f32;
use crate::features::{
    AgentView, FEATURE_DIM, FEATURE_MATCH_RADIUS_M, FeatureScratch, HISTORY_STEPS, Intent, RouteCursor,
    agent_features_with, route_at,
};
use crate::map::{MapContext, PathMatch};
use crate::net::{Network, Scratch, logit_offsets};
use crate::sampling::{STREAM_INTENT, STREAM_TOKEN, SamplingConfig, keyed_u32x4, sample_token};
use crate::tokens::{
    AgentClass, DT_S, Kinematics, VEHICLE_YAW_RATE_RADPS, pedestrian_step_by, pedestrian_step_with, step,
    vehicle_step_by,
};
use swm_core::rng::unit_f32;

/// Rollout settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutConfig {
    /// Frames to produce (80 = 8 s).
    pub steps: u32,
    pub samples: u32,
    /// Seed of the keyed generator.
    pub seed: u64,
    pub sampling: SamplingConfig,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig { steps: 80, samples: 1, seed: 0, sampling: SamplingConfig::default() }
    }
}

/// The rollouts of one scenario: `samples[s]` holds `(frame 1..=N, record)` rows ordered by
/// frame then agent.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRollout {
    pub scenario_id: u64,
    pub samples: Vec<Vec<(i32, TrajectoryRecord)>>,
}

/// An agent in the world as drivers see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldAgent {
    /// Scenario agent id.
    pub agent_id: u64,
    pub kind: AgentKind,
    pub length_m: f32,
    pub width_m: f32,
    pub state: Kinematics,
    /// Height of the road deck it is on above the ground now (m; see [`RolloutAgent::deck_m`]).
    pub deck_m: f64,
    /// The route-intent draw ([`RolloutAgent::intent`]): the route the collision mask
    /// follows ahead of a vehicle.
    pub intent: u32,
}

/// Drives agents from outside (a robot, an ego car under test).
pub trait AgentDriver: Sync {
    /// The state of `agent_id` at `frame`, given every agent at `frame - 1`; `None` lets the
    /// model drive it this step.
    fn next_state(
        &self,
        scenario_id: u64,
        sample: u32,
        agent_id: u64,
        frame: i32,
        world: &[WorldAgent],
    ) -> Option<Kinematics>;
}

impl<F> AgentDriver for F
where
    F: Fn(u64, u32, u64, i32, &[WorldAgent]) -> Option<Kinematics> + Sync,
{
    fn next_state(
        &self,
        scenario_id: u64,
        sample: u32,
        agent_id: u64,
        frame: i32,
        world: &[WorldAgent],
    ) -> Option<Kinematics> {
        self(scenario_id, sample, agent_id, frame, world)
    }
}

/// An agent during a rollout (shared with other rollout engines, e.g. `swm_gpu`).
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutAgent {
    /// Scenario agent id.
    pub id: u64,
    pub kind: AgentKind,
    pub class: AgentClass,
    pub length_m: f32,
    pub width_m: f32,
    /// Kinematics of the last [`HISTORY_STEPS`] + 1 frames, the newest last.
    pub history: Vec<Kinematics>,
    /// The signal state recorded at frame 0 (held when the map has no plans).
    pub signal: Option<SignalState>,
    /// The route-intent draw (`STREAM_INTENT`, frame 0).
    pub intent: u32,
    /// Height of the road deck the agent is on above the ground now (m): at frame 0 its
    /// record's height above the ground, then, for a vehicle, the deck at its path match of
    /// each frame ([`MapContext::deck_at`]; kept while it matches none). A vehicle matches
    /// only paths on its level ([`MapContext::on_level`]: a car in a tunnel never takes the
    /// road above it), and agents whose decks differ by [`LEVEL_SEPARATION_M`] or more are
    /// on different levels (a bridge over a road) and do not meet in the collision mask.
    pub deck_m: f64,
}

impl RolloutAgent {
    /// The agent as features see it (its route intent a per-agent choice).
    pub fn view(&self) -> AgentView<'_> {
        AgentView {
            kind: self.kind,
            length_m: self.length_m,
            width_m: self.width_m,
            history: &self.history,
            recorded_signal: self.signal,
            intent: Intent::Choice(self.intent),
            deck_m: self.deck_m,
        }
    }
}

/// The agents of a rollout (module docs, "Start"): those with a record at frame 0, ordered
/// by id, each with its contiguous recorded history ending at frame −1, its intent draw and
/// its deck (its frame-0 record's height above `map`'s ground).
pub fn start_agents(scenario: &Scenario, map: &MapContext, seed: u64, sample: u32) -> Vec<RolloutAgent> {
    let mut agents: Vec<RolloutAgent> = Vec::new();
    for (f, r) in &scenario.rows {
        if *f != 0 {
            continue;
        }
        let mut hist: Vec<(i32, Kinematics)> = scenario
            .rows
            .iter()
            .filter(|(g, q)| *g < 0 && *g >= -(HISTORY_STEPS as i32) && q.agent_id == r.agent_id)
            .map(|(g, q)| (*g, kinematics(q)))
            .collect();
        hist.sort_by_key(|x| x.0);
        // Keep the contiguous run ending at -1.
        let mut keep = Vec::new();
        let mut want = -1;
        for (g, k) in hist.iter().rev() {
            if *g != want {
                break;
            }
            keep.push(*k);
            want -= 1;
        }
        keep.reverse();
        keep.push(kinematics(r));
        agents.push(RolloutAgent {
            id: r.agent_id,
            kind: r.kind,
            class: AgentClass::of(r.kind),
            length_m: r.length_m,
            width_m: r.width_m,
            history: keep,
            signal: r.signal,
            intent: 0,
            deck_m: r.z_m - map.elevation_at([r.x_m, r.y_m]),
        });
    }
    agents.sort_by_key(|a| a.id);
    agents.dedup_by_key(|a| a.id);
    for (i, a) in agents.iter_mut().enumerate() {
        a.intent = keyed_u32x4(seed, scenario.scenario_id, i as u32, 0, sample, STREAM_INTENT)[0];
    }
    agents
}

/// Every agent's state now, as drivers and the masks see it.
pub fn world_of(agents: &[RolloutAgent]) -> Vec<WorldAgent> {
    agents
        .iter()
        .map(|a| WorldAgent {
            agent_id: a.id,
            kind: a.kind,
            length_m: a.length_m,
            width_m: a.width_m,
            state: *a.history.last().expect("agents have a state"),
            deck_m: a.deck_m,
            intent: a.intent,
        })
        .collect()
}

/// Advances every agent to its state `next[i]` at `frame` (history kept to
/// [`HISTORY_STEPS`] + 1) and appends its output record (module docs, "Output records").
pub fn push_frame(
    agents: &mut [RolloutAgent],
    next: &[Kinematics],
    map: &MapContext,
    scenario: &Scenario,
    frame: i32,
    out: &mut Vec<(i32, TrajectoryRecord)>,
) {
    push_frame_matching(agents, next, map, scenario, frame, out, None, false);
}

/// How far from a path a vehicle's record takes its lane (m).
const RECORD_LANE_MATCH_M: f64 = 3.0;

/// [`push_frame`], leaving in `matched[i]` (when given) each vehicle's path match at its new
/// state (the record's lane), which the masks' route continuation asks for again at the next
/// frame ([`MaskScratch::prepare`]) when the radii agree. With `parallel`, the vehicles' path
/// matches (each a function of its state alone) are made on rayon's threads first.
#[allow(clippy::too_many_arguments)]
fn push_frame_matching(
    agents: &mut [RolloutAgent],
    next: &[Kinematics],
    map: &MapContext,
    scenario: &Scenario,
    frame: i32,
    out: &mut Vec<(i32, TrajectoryRecord)>,
    mut matched: Option<&mut Vec<Option<Matched>>>,
    parallel: bool,
) {
    if let Some(m) = matched.as_deref_mut() {
        m.clear();
    }
    let keep = matched.is_some();
    // A vehicle's match at `k` on the level of its deck `deck_m` (and, kept for the next
    // frame's features, the wider one from the same search).
    let match_at = |k: &Kinematics, deck_m: f64| {
        if keep {
            map.match_path_two_on(k.point_enu, k.heading_rad, RECORD_LANE_MATCH_M, FEATURE_MATCH_RADIUS_M, Some(deck_m))
        } else {
            (map.match_path_on(k.point_enu, k.heading_rad, RECORD_LANE_MATCH_M, Some(deck_m)), None)
        }
    };
    let made: Vec<(Option<PathMatch>, Option<PathMatch>)> = if parallel {
        agents
            .par_iter()
            .zip(next.par_iter())
            .with_min_len(32)
            .map(|(a, k)| if a.kind.is_vehicle() { match_at(k, a.deck_m) } else { (None, None) })
            .collect()
    } else {
        Vec::new()
    };
    let t0 = scenario.current_time_s;
    let time_s = t0 + DT_S * f64::from(frame - 1);
    for (idx, (a, &k)) in agents.iter_mut().zip(next).enumerate() {
        let prev = *a.history.last().expect("agents have a state");
        a.history.push(k);
        if a.history.len() > HISTORY_STEPS + 1 {
            a.history.remove(0);
        }
        let (lane, signal) = if a.kind.is_vehicle() {
            let searched_deck_m = a.deck_m;
            let (m, wide) = made.get(idx).copied().unwrap_or_else(|| match_at(&k, searched_deck_m));
            if let Some(m) = &m {
                a.deck_m = map.deck_at(m.path, m.s_m);
            }
            if let Some(kept) = matched.as_deref_mut() {
                // The features' match at the next frame comes from the same search (when
                // the deck it was searched on is still the vehicle's).
                kept.push(Some(Matched {
                    state: k,
                    deck_m: searched_deck_m,
                    radius_m: RECORD_LANE_MATCH_M,
                    path: m,
                    feature_path: wide,
                }));
            }
            let lane = m.and_then(|m| map.paths[m.path as usize].lane);
            let sig = if map.has_plans() { lane.and_then(|l| map.plan_state(l, time_s + DT_S)) } else { a.signal };
            (lane, sig)
        } else {
            if let Some(kept) = matched.as_deref_mut() {
                kept.push(None);
            }
            (None, a.signal)
        };
        out.push((
            frame,
            TrajectoryRecord {
                agent_id: a.id,
                kind: a.kind,
                length_m: a.length_m,
                width_m: a.width_m,
                step: scenario.current_step.wrapping_add(frame as u32),
                time_s: t0 + DT_S * f64::from(frame),
                x_m: k.point_enu[0],
                y_m: k.point_enu[1],
                z_m: map.elevation_on(k.point_enu, a.deck_m),
                heading_rad: k.heading_rad,
                speed_mps: k.speed_mps,
                accel_mps2: (k.speed_mps - prev.speed_mps) / DT_S,
                lane,
                signal,
            },
        ));
    }
}

/// The rollout-side feasibility masks (module docs, "Feasibility masks").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeasibilityMask {
    /// Mask tokens after which the agent could no longer avoid another agent's box.
    pub collision: bool,
    /// Mask vehicle tokens that take more box corners off the road raster.
    pub offroad: bool,
}

impl Default for FeasibilityMask {
    fn default() -> Self {
        FeasibilityMask { collision: true, offroad: true }
    }
}

impl FeasibilityMask {
    /// No masking: the network's distribution as it is.
    pub const NONE: FeasibilityMask = FeasibilityMask { collision: false, offroad: false };
}

/// The feasibility masks for rollout engines outside this module (the GPU engine): call
/// [`FeasibilityFilter::new_frame`] with every agent's state at the previous frame, then
/// [`FeasibilityFilter::filter`] per model-driven agent with the same `world`, its sampled
/// token, its logits and word 1 of its token draw; the result is the token
/// [`rollout_one_masked`] would keep. (The frame's boxes, speeds and heights are read from
/// what `new_frame` was given.)
#[derive(Default)]
pub struct FeasibilityFilter {
    ms: MaskScratch,
    sort_buf: Vec<(f32, u16)>,
}

impl FeasibilityFilter {
    /// Starts a frame (every agent's state at the previous frame).
    pub fn new_frame(&mut self, world: &[WorldAgent]) {
        self.ms.new_frame(world);
    }

    /// The token agent `i` keeps (module docs, "Feasibility masks"); `logits` (the agent's
    /// class head) may be overwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn filter(
        &mut self,
        mask: FeasibilityMask,
        map: &MapContext,
        world: &[WorldAgent],
        i: usize,
        tok: u16,
        logits: &mut [f32],
        sampling: &SamplingConfig,
        u_redraw: f32,
    ) -> u16 {
        if mask == FeasibilityMask::NONE {
            return tok;
        }
        self.ms.filter(mask, map, world, i, tok, logits, sampling, u_redraw, &mut self.sort_buf)
    }
}

/// Hardest braking assumed in the collision mask (m/s²): the vehicle vocabulary's.
pub const MASK_BRAKE_MPS2: f64 = 6.0;
/// Agents whose decks differ by this much (m) are on different levels (the
/// metrics' separation, [`swm_sim::metrics::LEVEL_SEPARATION_M`]).
pub const LEVEL_SEPARATION_M: f64 = swm_sim::metrics::LEVEL_SEPARATION_M;
/// The collision mask takes agents whose decks are less than this apart (m) as on the same
/// level: a level's height ([`swm_twin::LEVEL_HEIGHT_M`]) less half a metre, wider than the
/// metrics' [`LEVEL_SEPARATION_M`]. On a ramp the decks of two vehicles converge as they
/// drive: a car coming down onto a standing one met it (Jamsil, seed 4) because the standing
/// one became a candidate only once the decks were 3 m apart, too close to stop. Roads on
/// different levels have decks a whole level apart, so they stay apart.
pub const MASK_LEVEL_SEPARATION_M: f64 = swm_twin::LEVEL_HEIGHT_M - 0.5;
/// Hardest lateral acceleration of the collision mask's escapes (m/s²): a vehicle escapes
/// by braking holding a yaw rate no sharper than this allows at the speed it starts from.
pub const MASK_LATERAL_MPS2: f64 = 3.0;
/// Steps the token is held for the off-road lookahead (1 s after the token's own step).
pub const MASK_OFFROAD_HOLD_STEPS: usize = 10;
/// Margin added to the vehicle's half length and width in the off-road mask (m).
pub const MASK_OFFROAD_MARGIN_M: f64 = 0.0;
/// Longest braking lookahead of the collision mask (steps).
const MASK_MAX_BRAKE_STEPS: usize = 30;
/// Side of the cells by which the collision mask finds its candidates in frames of many
/// agents (m; `crate::cells`): about a quarter of a city-speed vehicle's reach.
const CANDIDATE_CELL_M: f64 = 32.0;
/// A vehicle within this distance of a path (m) and heading along it
/// ([`MASK_ROUTE_HEADING_RAD`]) follows its route in the collision mask.
pub const MASK_ROUTE_MATCH_M: f64 = 3.0;
/// Largest heading error from the path (rad) for the route continuation.
pub const MASK_ROUTE_HEADING_RAD: f64 = 0.5;
/// The full check's walk stops once the tokens found with the best score possible hold this
/// share of their own mass plus the mass of the tokens not scored yet (module docs).
pub const MASK_STOP_FRACTION: f32 = 0.99;
/// Margin added to both boxes' half sizes in the collision mask (m).
const MASK_BOX_MARGIN_M: f64 = 0.1;
/// How far a pedestrian can be from where the collision mask assumes it after one step
/// (m): its token changes its velocity by up to 0.6 m/s forward and sideways
/// ([`crate::tokens::PEDESTRIAN_DV_MPS`]), 0.6·√2 m/s × 0.1 s. A pedestrian candidate's bare
/// box is grown by this much for the hit test, so an agent clear of it is clear of wherever
/// the pedestrian steps; where the agent's bare box is closer to it than that already, by
/// the gap between them less [`MASK_GROW_GAP_M`].
pub const MASK_PEDESTRIAN_REACH_M: f64 = 0.6 * std::f64::consts::SQRT_2 * DT_S;
/// What a pedestrian candidate's growth leaves of the gap to the agent's bare box (m; see
/// [`MASK_PEDESTRIAN_REACH_M`]).
pub const MASK_GROW_GAP_M: f64 = 0.001;

/// Added to the reaches of [`own_reach_m`], [`their_reach_m`] and [`route_reach_m`] (m): far
/// above the rounding of their sums and of the states' coordinates.
const MASK_REACH_SLACK_M: f64 = 0.01;
/// The vehicle vocabulary's hardest acceleration (m/s²).
const VEHICLE_ACCEL_MAX_MPS2: f64 = crate::tokens::VEHICLE_ACCEL_MPS2[crate::tokens::VEHICLE_ACCEL_MPS2.len() - 1];

/// An upper bound of the distance (m) an agent covers braking at [`MASK_BRAKE_MPS2`] from
/// `speed_mps`, in steps of [`DT_S`], either class ([`braking_states`]): a vehicle's steps
/// cover the trapezoids of its speeds, which sum to the continuous stopping distance but
/// for the last step's (at most `½·a·dt²` more); a pedestrian's the speed after each step,
/// which sum to less.
fn braking_reach_m(speed_mps: f64) -> f64 {
    let v = speed_mps.abs();
    v * v / (2.0 * MASK_BRAKE_MPS2) + 0.5 * MASK_BRAKE_MPS2 * DT_S * DT_S
}

/// The vehicle vocabulary's sharpest yaw rate (rad/s).
const VEHICLE_YAW_RATE_MAX_RADPS: f64 = VEHICLE_YAW_RATE_RADPS[VEHICLE_YAW_RATE_RADPS.len() - 1];

/// The distance (m) a vehicle covers in `t_s` braking at [`MASK_BRAKE_MPS2`] from
/// `speed_mps` (continuous, stopped once its speed is spent).
fn braked_m(speed_mps: f64, t_s: f64) -> f64 {
    let t = t_s.min(speed_mps / MASK_BRAKE_MPS2).max(0.0);
    speed_mps * t - 0.5 * MASK_BRAKE_MPS2 * t * t
}

/// How a vehicle's ghost box is grown in one of its assumed braking states (module docs,
/// "Moves at once"; [`ghost_spread`]): its centre moved forward by `shift_m`, its half
/// length grown by `hl_m` and its half width by `hw_m` (m).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Spread {
    shift_m: f64,
    hl_m: f64,
    hw_m: f64,
}

impl Spread {
    /// How much farther than the ungrown box's circle (radius `r`) any point of the grown
    /// box can be from the ungrown centre: at most `r + extra_m()` (`hypot` grows by at
    /// most the sum of what its legs grow by).
    fn extra_m(&self) -> f64 {
        self.shift_m + self.hl_m + self.hw_m
    }
}

/// How much a vehicle's ghost box (half length `hl_m`, half width `hw_m`, speed now
/// `speed_mps`) is grown `i` steps from now (module docs, "Moves at once"): where the vehicle
/// may be instead when its token this step is not the hardest braking. The other agents
/// move in the same step as the masked one, so each must keep clear of where the other may
/// be after *its* step, not only after braking. Longitudinally, the fastest token
/// ([`VEHICLE_ACCEL_MAX_MPS2`] for one step, then braking at [`MASK_BRAKE_MPS2`]) runs
/// `s_alt − s_ghost` ahead of the braking ghost (continuous, plus the discretisation's
/// `½·a·dt²`; growing until both have stopped). Its heading may have turned by `δ`, one
/// step at the sharpest yaw rate the vocabulary and the turning limit allow at the step's
/// mean speed, no sharper than [`MASK_LATERAL_MPS2`] allows at the speed after it (the
/// escapes' plausible yaw): that swings its corners by `hl·sin δ` sideways and `hw·sin δ`
/// along, and moves its centre by up to `s_alt·sin δ` sideways. The box is grown to cover
/// both, up to second-order terms in `δ`: the run ahead at the front only (the hardest
/// braking is the ghost itself), the swing at both ends and sides.
fn ghost_spread(speed_mps: f64, hl_m: f64, hw_m: f64, i: usize) -> Spread {
    GhostSpread::new(speed_mps, hl_m, hw_m).at(i)
}

/// [`ghost_spread`] of one vehicle, what every step shares computed once.
struct GhostSpread {
    v: f64,
    v1: f64,
    sin_d: f64,
    hl_m: f64,
    hw_m: f64,
}

impl GhostSpread {
    fn new(speed_mps: f64, hl_m: f64, hw_m: f64) -> GhostSpread {
        let v = speed_mps.max(0.0);
        let a = VEHICLE_ACCEL_MAX_MPS2;
        let v1 = v + a * DT_S;
        let yaw_radps = VEHICLE_YAW_RATE_MAX_RADPS
            .min(crate::tokens::VEHICLE_MAX_CURVATURE_PER_M * (v + 0.5 * a * DT_S))
            .min(MASK_LATERAL_MPS2 / v1);
        GhostSpread { v, v1, sin_d: (yaw_radps * DT_S).sin(), hl_m, hw_m }
    }

    fn at(&self, i: usize) -> Spread {
        if i == 0 {
            return Spread::default();
        }
        let (v, v1, sin_d) = (self.v, self.v1, self.sin_d);
        let a = VEHICLE_ACCEL_MAX_MPS2;
        let s_alt_m = v * DT_S + 0.5 * a * DT_S * DT_S + braked_m(v1, (i - 1) as f64 * DT_S);
        // Plus the steps' discretisation: a braking run of steps overshoots the continuous
        // stop by less than `½·a·dt²` ([`braking_reach_m`]).
        let along_m = (s_alt_m - braked_m(v, i as f64 * DT_S)).max(0.0) + 0.5 * MASK_BRAKE_MPS2 * DT_S * DT_S;
        Spread { shift_m: 0.5 * along_m, hl_m: 0.5 * along_m + self.hw_m * sin_d, hw_m: (s_alt_m + self.hl_m) * sin_d }
    }
}

/// [`ghost_spread`]'s [`Spread::extra_m`] over every braking state of the lookahead (the
/// spread only grows with the step), 0 for a pedestrian (whose step is bounded by
/// [`MASK_PEDESTRIAN_REACH_M`] instead).
fn ghost_spread_max_m(class: AgentClass, speed_mps: f64, shape: &MaskBox) -> f64 {
    match class {
        AgentClass::Vehicle => ghost_spread(speed_mps, shape.hl, shape.hw, MASK_MAX_BRAKE_STEPS).extra_m(),
        AgentClass::Pedestrian => 0.0,
    }
}

/// An upper bound of how far (m) the prepared agent's centre is from where it is now in any
/// state of its escapes, whatever the token ([`MaskScratch::continuation_level`]): the
/// token's step (its fastest), then braking from the speed after it.
fn own_reach_m(class: AgentClass, speed_mps: f64) -> f64 {
    let v0 = speed_mps.abs();
    match class {
        AgentClass::Vehicle => {
            let v1 = v0 + VEHICLE_ACCEL_MAX_MPS2 * DT_S;
            0.5 * (v0 + v1) * DT_S + braking_reach_m(v1)
        }
        AgentClass::Pedestrian => {
            // The velocity changes by at most 0.6 m/s on each axis ([`MASK_PEDESTRIAN_REACH_M`]
            // in a step), and the speed after the step is capped.
            let v1 = (v0 + MASK_PEDESTRIAN_REACH_M / DT_S).min(crate::tokens::PEDESTRIAN_MAX_SPEED_MPS);
            v1 * DT_S + braking_reach_m(v1)
        }
    }
}

/// An upper bound of how far (m) a candidate's centre is from where it is now in any of its
/// braking states ([`their_braking_states`]).
fn their_reach_m(class: AgentClass, speed_mps: f64) -> f64 {
    match class {
        AgentClass::Vehicle => braking_reach_m(speed_mps),
        AgentClass::Pedestrian => {
            let v = speed_mps.abs().min(crate::tokens::PEDESTRIAN_MAX_SPEED_MPS);
            v * DT_S + braking_reach_m(v)
        }
    }
}

/// An upper bound of how far (m) the prepared vehicle's centre is from `now` in any state of
/// its route continuation ([`MaskScratch::route_level`]), whatever the token: each state is
/// the route's point `s` ahead of the match (at most the token's step and the stopping
/// distance after it), offset by the lateral offset along the normal there. The point is
/// within `s` of the matched point along the route, plus the gaps between its paths' ends
/// and starts (and how far the match lies beyond its path's ends); the normals differ by at
/// most 2; and the matched point offset along its own normal is where `now` is, up to
/// `e0`, computed.
fn route_reach_m(map: &MapContext, route: &[(u32, f64)], m: &PathMatch, now: &Kinematics) -> f64 {
    // The route's braking covers the continuous stopping distance: the escapes' bound holds.
    let ahead_m = own_reach_m(AgentClass::Vehicle, now.speed_mps);
    let first = &map.paths[m.path as usize];
    let beyond_m = (m.s_m - m.s_m.clamp(0.0, first.length_m)).abs();
    let gaps_m: f64 = route.windows(2).map(|w| path_gap_m(map, w[0].0, w[1].0)).sum();
    let lat = m.lateral_m;
    let (q0, d0) = first.at(m.s_m);
    let e0_m = (q0[0] - lat * d0[1] - now.point_enu[0]).hypot(q0[1] + lat * d0[0] - now.point_enu[1]);
    e0_m + ahead_m + beyond_m + gaps_m + 2.0 * lat.abs()
}

/// How far path `b` starts from where path `a` ends (m; infinite when either has no point).
fn path_gap_m(map: &MapContext, a: u32, b: u32) -> f64 {
    match (map.paths[a as usize].points.last(), map.paths[b as usize].points.first()) {
        (Some(p), Some(q)) => (q[0] - p[0]).hypot(q[1] - p[1]),
        _ => f64::INFINITY,
    }
}

/// An oriented box (centre, unit forward, half length, half width, and the radius of its
/// circumscribed circle).
#[derive(Clone, Copy, Debug, Default)]
struct MaskBox {
    c: [f64; 2],
    f: [f64; 2],
    hl: f64,
    hw: f64,
    r: f64,
}

impl MaskBox {
    fn new(k: &Kinematics, length_m: f32, width_m: f32, margin: f64) -> MaskBox {
        let (s, c) = k.heading_rad.sin_cos();
        MaskBox { c: k.point_enu, f: [c, s], ..MaskBox::sized(length_m, width_m, margin) }
    }
    /// A box of the size [`MaskBox::new`] gives, at the origin, heading east.
    fn sized(length_m: f32, width_m: f32, margin: f64) -> MaskBox {
        let (hl, hw) = (0.5 * f64::from(length_m) + margin, 0.5 * f64::from(width_m) + margin);
        MaskBox { c: [0.0; 2], f: [1.0, 0.0], hl, hw, r: hl.hypot(hw) }
    }
    /// The same box moved to `k` (the size and radius kept: no `hypot`), the heading's sine
    /// and cosine from `trig`.
    fn moved_to_by(&self, k: &Kinematics, trig: &mut SinCos) -> MaskBox {
        let (s, c) = trig.of(k.heading_rad);
        MaskBox { c: k.point_enu, f: [c, s], ..*self }
    }
    fn radius(&self) -> f64 {
        self.r
    }
    /// The same box without the collision mask's margin ([`MASK_BOX_MARGIN_M`]).
    fn bare(&self) -> MaskBox {
        self.bare_grown(0.0)
    }
    /// The bare box grown by `extra_m` (a pedestrian's reach, [`MASK_PEDESTRIAN_REACH_M`]).
    fn bare_grown(&self, extra_m: f64) -> MaskBox {
        let (hl, hw) = (self.hl - MASK_BOX_MARGIN_M + extra_m, self.hw - MASK_BOX_MARGIN_M + extra_m);
        MaskBox { hl, hw, r: hl.hypot(hw), ..*self }
    }
    fn corners(&self) -> [[f64; 2]; 4] {
        let (f, l) = (self.f, [-self.f[1], self.f[0]]);
        let at = |a: f64, b: f64| [self.c[0] + a * f[0] + b * l[0], self.c[1] + a * f[1] + b * l[1]];
        [at(self.hl, self.hw), at(-self.hl, self.hw), at(-self.hl, -self.hw), at(self.hl, -self.hw)]
    }
    fn extent(&self, axis: [f64; 2]) -> f64 {
        let l = [-self.f[1], self.f[0]];
        self.hl * (self.f[0] * axis[0] + self.f[1] * axis[1]).abs() + self.hw * (l[0] * axis[0] + l[1] * axis[1]).abs()
    }
    /// How far `o`'s half sizes could grow before it touches this box: the largest
    /// separation over the separating axes, each divided by how fast `o`'s extent along it
    /// grows (negative where they overlap).
    fn growth_room(&self, o: &MaskBox) -> f64 {
        let d = [o.c[0] - self.c[0], o.c[1] - self.c[1]];
        let ol = [-o.f[1], o.f[0]];
        [self.f, [-self.f[1], self.f[0]], o.f, ol]
            .iter()
            .map(|a| {
                let sep = (d[0] * a[0] + d[1] * a[1]).abs() - self.extent(*a) - o.extent(*a);
                sep / ((o.f[0] * a[0] + o.f[1] * a[1]).abs() + (ol[0] * a[0] + ol[1] * a[1]).abs())
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }
    /// Separating-axis test (touching counts as overlapping).
    fn overlaps(&self, o: &MaskBox) -> bool {
        self.circles_meet(o) && self.axes_overlap(o)
    }
    /// Whether the circumscribed circles meet (needs only the centres and radii).
    fn circles_meet(&self, o: &MaskBox) -> bool {
        let d = [o.c[0] - self.c[0], o.c[1] - self.c[1]];
        let r = self.radius() + o.radius();
        d[0] * d[0] + d[1] * d[1] <= r * r
    }
    /// The separating-axis test proper ([`MaskBox::overlaps`] without the circles).
    fn axes_overlap(&self, o: &MaskBox) -> bool {
        let d = [o.c[0] - self.c[0], o.c[1] - self.c[1]];
        for axis in [self.f, [-self.f[1], self.f[0]], o.f, [-o.f[1], o.f[0]]] {
            if (d[0] * axis[0] + d[1] * axis[1]).abs() > self.extent(axis) + o.extent(axis) {
                return false;
            }
        }
        true
    }
}

/// A vehicle's path match within `radius_m` at `state` ([`MapContext::match_path`]), and
/// within the features' radius ([`FEATURE_MATCH_RADIUS_M`]).
#[derive(Clone, Copy, Debug)]
struct Matched {
    state: Kinematics,
    /// The deck whose level the search kept to.
    deck_m: f64,
    radius_m: f64,
    path: Option<PathMatch>,
    feature_path: Option<PathMatch>,
}

impl Matched {
    /// The match within `radius_m` kept for a vehicle now at `k` on deck `deck_m`, when it
    /// was made there with that radius.
    fn at(kept: Option<&Option<Matched>>, k: &Kinematics, deck_m: f64, radius_m: f64) -> Option<Option<PathMatch>> {
        let m = (*kept?)?;
        (m.radius_m.to_bits() == radius_m.to_bits() && m.made_at(k, deck_m)).then_some(m.path)
    }

    /// The features' match kept for a vehicle now at `k` on deck `deck_m`, when it was made
    /// there.
    fn for_features(kept: Option<&Option<Matched>>, k: &Kinematics, deck_m: f64) -> Option<Option<PathMatch>> {
        let m = (*kept?)?;
        m.made_at(k, deck_m).then_some(m.feature_path)
    }

    /// Whether the match was made at `k`'s pose on deck `deck_m` (the same bits).
    fn made_at(&self, k: &Kinematics, deck_m: f64) -> bool {
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits();
        same(self.state.point_enu[0], k.point_enu[0])
            && same(self.state.point_enu[1], k.point_enu[1])
            && same(self.state.heading_rad, k.heading_rad)
            && same(self.deck_m, deck_m)
    }
}

/// The bounding rectangle of a set of box centres (min x, min y, max x, max y).
#[derive(Clone, Copy, Debug)]
struct Bounds([f64; 4]);

impl Bounds {
    const EMPTY: Bounds = Bounds([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY]);

    fn of(centres: impl Iterator<Item = [f64; 2]>) -> Bounds {
        let mut b = Bounds::EMPTY.0;
        for c in centres {
            b = [b[0].min(c[0]), b[1].min(c[1]), b[2].max(c[0]), b[3].max(c[1])];
        }
        Bounds(b)
    }

    /// Whether every centre of `self` is farther than `reach_m` from every centre of `o`
    /// along x or along y, with a margin for rounding: then no two circles of radii summing
    /// to `reach_m` around them meet ([`MaskBox::circles_meet`] is false for every pair, as
    /// |dx| > r gives dx² + dy² > r² in floating point too). True when either holds no
    /// centre; false where a coordinate is NaN.
    fn apart(&self, o: &Bounds, reach_m: f64) -> bool {
        let r = reach_m + 1e-6 * (1.0 + reach_m);
        let (a, b) = (self.0, o.0);
        b[0] - a[2] > r || a[0] - b[2] > r || b[1] - a[3] > r || a[1] - b[3] > r
    }
}

/// `f64::sin_cos` of the angles asked for lately, remembered in a direct-mapped table keyed
/// by the angle's bits. A braking agent's heading stops changing (straight on, or once it
/// stands), and the tokens of one yaw-rate column turn alike (the acceleration changes the
/// speed, not the turn, until the curvature limit binds), so the masks' states and boxes ask
/// for the same angles over and over, a few hundred others apart. The values are
/// `sin_cos`'s own, so nothing changes but the time.
#[derive(Clone, Debug)]
struct SinCos {
    /// The angle asked for last, its sine and cosine: a braking straight on asks for the
    /// same angle at every step, answered here without the table.
    last: (u64, f64, f64),
    /// Per entry: the angle's bits, its sine and cosine.
    table: Box<[(u64, f64, f64)]>,
    /// How far the hash is shifted down to index the table (64 − log2 of its length).
    shift: u32,
}

/// Entries of [`SinCos`] (a power of two; 96 KiB). Measured on `bench_model`'s rollouts:
/// 64 entries gain nothing, 1,024 about 6 %, 4,096 a few per cent more.
const SIN_COS_SLOTS: usize = 4096;

impl Default for SinCos {
    /// The rollouts' table ([`SIN_COS_SLOTS`] entries).
    fn default() -> SinCos {
        SinCos::with_slots(SIN_COS_SLOTS)
    }
}

impl SinCos {
    /// A table of `slots` entries (a power of two; 1 remembers the last angle only, for
    /// the one-off checks outside a rollout).
    fn with_slots(slots: usize) -> SinCos {
        debug_assert!(slots.is_power_of_two());
        // Every entry holds the angle 0 (bits 0) with its own sine and cosine.
        let (s, c) = 0.0f64.sin_cos();
        let zero = (0.0f64.to_bits(), s, c);
        SinCos { last: zero, table: vec![zero; slots].into_boxed_slice(), shift: 64 - slots.trailing_zeros() }
    }

    #[inline]
    fn of(&mut self, angle_rad: f64) -> (f64, f64) {
        let bits = angle_rad.to_bits();
        if bits == self.last.0 {
            return (self.last.1, self.last.2);
        }
        // Fibonacci hashing: the top bits of the product mix every bit of the angle (a
        // one-entry table shifts by 64: index 0).
        let i = bits.wrapping_mul(0x9E37_79B9_7F4A_7C15).checked_shr(self.shift).unwrap_or(0) as usize;
        let e = &mut self.table[i];
        if e.0 != bits {
            let (s, c) = angle_rad.sin_cos();
            *e = (bits, s, c);
        }
        self.last = *e;
        (e.1, e.2)
    }
}

/// The states of an agent braking from `k` (vehicles at [`MASK_BRAKE_MPS2`] holding
/// `yaw_rate`; pedestrians slowing straight at the same rate) for `steps` steps, `k` itself
/// first.
fn braking_states(
    class: AgentClass,
    k: &Kinematics,
    yaw_rate: f64,
    steps: usize,
    out: &mut Vec<Kinematics>,
    trig: &mut SinCos,
) {
    out.clear();
    out.push(*k);
    let mut cur = *k;
    for _ in 0..steps {
        let next = match class {
            AgentClass::Vehicle => vehicle_step_by(&cur, -MASK_BRAKE_MPS2, yaw_rate, |a| trig.of(a)),
            // The vocabulary's hardest forward slowing (0.6 m/s per step) is the same rate.
            AgentClass::Pedestrian => {
                pedestrian_step_by(&cur, -cur.speed_mps.min(MASK_BRAKE_MPS2 * DT_S), 0.0, |a| trig.of(a))
            }
        };
        if same_state(&next, &cur) {
            // A step that changes no bit (the agent has stopped) changes none the next time
            // either: the step is a function of the state alone.
            out.resize(steps + 1, cur);
            return;
        }
        cur = next;
        out.push(cur);
    }
}

/// Whether two states are the same bits.
fn same_state(a: &Kinematics, b: &Kinematics) -> bool {
    a.point_enu[0].to_bits() == b.point_enu[0].to_bits()
        && a.point_enu[1].to_bits() == b.point_enu[1].to_bits()
        && a.heading_rad.to_bits() == b.heading_rad.to_bits()
        && a.speed_mps.to_bits() == b.speed_mps.to_bits()
}

/// Collision levels of a token ([`MaskScratch::check`]): clear of every candidate with the
/// boxes grown by [`MASK_BOX_MARGIN_M`]; clear only with the bare boxes (the grown ones meet);
/// the bare boxes meet. Among the tokens with the best off-road score the mask keeps those of
/// the best level reached (all of them when even that is a hit).
const COLL_CLEAR: u16 = 0;
const COLL_BARE_CLEAR: u16 = 1;
const COLL_HIT: u16 = 2;

/// The collision level of token `t` of an agent of class `class` whose braking
/// continuation first meets a candidate's bare box at step `k` (0: right after the token):
/// above [`COLL_HIT`], higher the earlier the hit and, among hits at the same step, the
/// higher the token's acceleration (a pedestrian's: its forward velocity change),
/// so where every token hits, the mask keeps the hardest braking of those that hit last.
/// (Two walkers closing on each other, each assuming the other slows, met when every token
/// of one hit at once and it sampled a token that kept walking.)
fn hit_level(class: AgentClass, t: u16, k: usize) -> u16 {
    let accel = match class {
        AgentClass::Vehicle => (t as usize).min(crate::tokens::VEHICLE_TOKENS - 1) / VEHICLE_YAW_RATE_RADPS.len(),
        AgentClass::Pedestrian => {
            (t as usize).min(crate::tokens::PEDESTRIAN_TOKENS - 1) / crate::tokens::PEDESTRIAN_DV_MPS.len()
        }
    };
    COLL_HIT + 16 * (MASK_MAX_BRAKE_STEPS + 1 - k.min(MASK_MAX_BRAKE_STEPS)) as u16 + accel as u16
}

/// Where one path of a route may end farther than this (m) from the next one's start for a
/// candidate's braking to follow on along the route ([`their_route_states`]): the route is
/// cut there, so its points move no farther than the distance along it and
/// [`their_reach_m`] bounds them (well within [`MASK_REACH_SLACK_M`] over its paths).
const GHOST_ROUTE_GAP_M: f64 = 1e-4;

/// The states another agent is assumed in by the collision mask, from its state now (`w`),
/// that state first. A moving vehicle on a lane it follows (within [`MASK_ROUTE_MATCH_M`]
/// and [`MASK_ROUTE_HEADING_RAD`] of it, on its level, as [`MaskScratch::prepare`] finds the
/// masked vehicle's path, and the path a lane, not a junction's connection) brakes at
/// [`MASK_BRAKE_MPS2`] **along its route** ([`their_route_states`]); any other vehicle
/// brakes straight at that rate. A pedestrian, whose velocity changes little in a step,
/// finishes the step it is taking at its current velocity (agents move at once) and then
/// slows straight at the same rate. `kept` is the frame's path match of the agent, when made
/// ([`Matched`]).
fn their_braking_states(
    map: &MapContext,
    w: &WorldAgent,
    kept: Option<&Option<Matched>>,
    steps: usize,
    out: &mut Vec<Kinematics>,
    trig: &mut SinCos,
) {
    let class = AgentClass::of(w.kind);
    match class {
        AgentClass::Vehicle => {
            if !(w.state.speed_mps > 0.0 && their_route_states(map, w, kept, steps, out)) {
                braking_states(class, &w.state, 0.0, steps, out, trig);
            }
        }
        AgentClass::Pedestrian => {
            braking_states(class, &pedestrian_step_with(&w.state, 0.0, 0.0), 0.0, steps.saturating_sub(1), out, trig);
            out.insert(0, w.state);
        }
    }
}

/// The states the collision mask assumes another agent in, its "ghost" (`steps` steps after
/// its state now, that state first; module docs, "Feasibility masks"): a moving vehicle on a
/// lane it follows brakes straight on in its route's frame, any other agent straight on.
pub fn assumed_braking_states(map: &MapContext, w: &WorldAgent, steps: usize) -> Vec<Kinematics> {
    let mut out = Vec::new();
    their_braking_states(map, w, None, steps, &mut out, &mut SinCos::with_slots(1));
    out
}

/// A vehicle's braking along its route (its intent's paths, [`WorldAgent::intent`]), `steps`
/// states after its state now, into `out`; false (and `out` untouched) when it follows no
/// lane. After `k` steps it has gone `s = v·t − ½·a·t²` (`t = min(k·dt, v/a)`, the
/// continuous braking from its speed `v` at [`MASK_BRAKE_MPS2`]) **straight on in the
/// lane's frame**: at its heading error `e` from the line, `s·cos e` along the route and
/// `s·sin e` across it. Its centre has moved as the route's centre line moves from the
/// matched point to the point `s·cos e` further on, plus `s·sin e` along the line's left
/// normal there; its heading has turned as the line turns. On a straight lane that is
/// braking straight on (up to the steps' discretisation: a car changing lanes goes on
/// across them); on a bend the vehicle stays in its lane where braking straight would run
/// across the lanes beside (three cars abreast on a left bend of Yeouido met that way in
/// session 40's evaluation: the inner car's straight "ghost" ran into the middle lane,
/// whose car swerved). Its centre moves no farther than `s` (the route's points are
/// continuous, it is cut at a gap above [`GHOST_ROUTE_GAP_M`], and where a bend makes the
/// two moves add up to more, they are scaled down to `s`), which [`their_reach_m`] bounds as
/// it bounds straight braking.
///
/// In a junction the ghost brakes straight on: there the paths cross and the route is one
/// guess of several. (With ghosts following the connections too, session 41's evaluation on
/// Yeouido, seed 3, met 5 contacts in one junction scene, a car turning on its connection
/// and an oncoming one; with them straight, none.)
fn their_route_states(
    map: &MapContext,
    w: &WorldAgent,
    kept: Option<&Option<Matched>>,
    steps: usize,
    out: &mut Vec<Kinematics>,
) -> bool {
    let k = &w.state;
    let m = Matched::at(kept, k, w.deck_m, MASK_ROUTE_MATCH_M)
        .unwrap_or_else(|| map.match_path_on(k.point_enu, k.heading_rad, MASK_ROUTE_MATCH_M, Some(w.deck_m)));
    // On a lane (not in a junction, where the paths cross and its route is one guess of
    // several), heading along it.
    let Some(m) =
        m.filter(|m| m.heading_error_rad.abs() < MASK_ROUTE_HEADING_RAD && map.paths[m.path as usize].lane.is_some())
    else {
        return false;
    };
    let v = k.speed_mps;
    let route =
        crate::features::route(map, m.path, m.s_m, &Intent::Choice(w.intent), v * v / (2.0 * MASK_BRAKE_MPS2) + 1.0);
    let follows_on = |pair: &[(u32, f64)]| path_gap_m(map, pair[0].0, pair[1].0) <= GHOST_ROUTE_GAP_M;
    let route = &route[..1 + route.windows(2).take_while(|pair| follows_on(pair)).count()];
    let mut cursor = RouteCursor::default();
    let mut at = |s_m: f64| route_at(map, route, s_m, &mut cursor);
    let (q0, _, h0) = at(0.0);
    // The heading error from the line: the vehicle goes on at that angle to it.
    let (sin_e, cos_e) = crate::tokens::wrap_angle(k.heading_rad - h0).sin_cos();
    out.clear();
    out.push(*k);
    let stop_s = v / MASK_BRAKE_MPS2;
    for i in 1..=steps {
        let t_s = (i as f64 * DT_S).min(stop_s);
        let s_m = v * t_s - 0.5 * MASK_BRAKE_MPS2 * t_s * t_s;
        let (q, d, h) = at(s_m * cos_e);
        let across_m = s_m * sin_e;
        let mut moved = [q[0] - q0[0] - across_m * d[1], q[1] - q0[1] + across_m * d[0]];
        // No farther than `s_m` from where it is (the reach's bound): only on a bend does
        // the sum of the two moves come out longer.
        let len2 = moved[0] * moved[0] + moved[1] * moved[1];
        if len2 > s_m * s_m {
            let len_m = len2.sqrt();
            moved = [moved[0] * s_m / len_m, moved[1] * s_m / len_m];
        }
        let speed_mps = (v - MASK_BRAKE_MPS2 * i as f64 * DT_S).max(0.0);
        out.push(Kinematics {
            point_enu: [k.point_enu[0] + moved[0], k.point_enu[1] + moved[1]],
            heading_rad: k.heading_rad + crate::tokens::wrap_angle(h - h0),
            speed_mps,
        });
        if t_s == stop_s && speed_mps == 0.0 {
            // Stopped: every later step gives this state again (`t_s` stays at the stop, the
            // speed at 0), so it is copied, the same bits.
            out.resize(steps + 1, out[i]);
            break;
        }
    }
    true
}

/// Box corners of `b` off the drivable area ([`MapContext::is_drivable`]; the corners of
/// [`MaskBox::corners`], [`MapContext::drivable_corners`]).
fn corners_off_road(map: &MapContext, b: &MaskBox) -> u8 {
    4 - map.drivable_corners(b.c, b.f, b.hl, b.hw).count_ones() as u8
}

/// Whether a corner of `b` is off the drivable area (`corners_off_road(map, b) > 0`).
fn any_corner_off_road(map: &MapContext, b: &MaskBox) -> bool {
    map.drivable_corners(b.c, b.f, b.hl, b.hw) != 0b1111
}

/// The off-road score of a token after which the vehicle could not brake to a stop on the
/// road (module docs): above every score of a token after which it could.
const OFFROAD_NO_ESCAPE: u8 = 5;
/// Longest braking of the off-road escape check (steps: 6 s, from 36 m/s).
const MASK_ESCAPE_MAX_STEPS: usize = 60;

/// The yaw-rate column of vehicle token `t`.
fn vehicle_yaw_index(t: u16) -> usize {
    (t as usize).min(crate::tokens::VEHICLE_TOKENS - 1) % VEHICLE_YAW_RATE_RADPS.len()
}

/// Whether a vehicle at `k` (box `shape`, its size and margin) can brake to a stop at
/// [`MASK_BRAKE_MPS2`] holding one of the vocabulary's yaw rates with every box on the
/// drivable area, `k`'s own included. The yaw rates are tried from column `first` outwards;
/// the answer does not depend on the order.
fn can_brake_on_road(map: &MapContext, shape: &MaskBox, k: &Kinematics, first: usize) -> bool {
    let n = VEHICLE_YAW_RATE_RADPS.len();
    (0..n).map(|d| escape_column(first, d, n)).any(|j| brakes_on_road(map, shape, k, VEHICLE_YAW_RATE_RADPS[j]))
}

/// Whether a vehicle at `k` (box `shape`) braking at [`MASK_BRAKE_MPS2`] holding `yaw`
/// keeps every box on the drivable area until it stops, `k`'s own included.
fn brakes_on_road(map: &MapContext, shape: &MaskBox, k: &Kinematics, yaw: f64) -> bool {
    brakes_on_road_within(map, shape, k, yaw, MASK_ESCAPE_MAX_STEPS, &mut SinCos::with_slots(1))
}

/// [`brakes_on_road`] with at most `steps` braking steps (a vehicle still moving after them
/// does not count as stopped).
fn brakes_on_road_within(
    map: &MapContext,
    shape: &MaskBox,
    k: &Kinematics,
    yaw: f64,
    steps: usize,
    trig: &mut SinCos,
) -> bool {
    let mut s = *k;
    if any_corner_off_road(map, &shape.moved_to_by(&s, trig)) {
        return false;
    }
    for _ in 0..steps {
        if s.speed_mps <= 0.0 {
            return true;
        }
        s = vehicle_step_by(&s, -MASK_BRAKE_MPS2, yaw, |a| trig.of(a));
        if any_corner_off_road(map, &shape.moved_to_by(&s, trig)) {
            return false;
        }
    }
    s.speed_mps <= 0.0
}

/// Whether a vehicle (`length_m` × `width_m`) at `k` can brake to a stop on the drivable
/// area (the off-road mask's test, module docs): a vehicle for which this holds at the start
/// of a masked rollout stays on the road while the model drives it (the masks rank the
/// off-road score before the collision level).
pub fn vehicle_can_brake_on_road(map: &MapContext, k: &Kinematics, length_m: f32, width_m: f32) -> bool {
    let zero_yaw = VEHICLE_YAW_RATE_RADPS.len() / 2;
    can_brake_on_road(map, &MaskBox::new(k, length_m, width_m, MASK_OFFROAD_MARGIN_M), k, zero_yaw)
}

/// The `d`-th yaw-rate column tried from `first`: `first`, then alternately one more to
/// each side (right first), then the rest of the longer side; every column once.
fn escape_column(first: usize, d: usize, n: usize) -> usize {
    let (left, right) = (n - 1 - first, first);
    let pairs = left.min(right);
    if d == 0 {
        first
    } else if d <= 2 * pairs {
        let k = d.div_ceil(2);
        if d % 2 == 1 { first - k } else { first + k }
    } else {
        let k = d - pairs;
        if right > left { first - k } else { first + k }
    }
}

/// An agent's boxes of the masks, by size only ([`MaskBox::sized`]: at the origin, heading
/// east), for an agent of the `key`'s length and width (their bits): the collision mask's
/// box, the same without its margin, and the off-road box. Sizes rarely change, so these
/// (and their `hypot`s) are made once per agent, not per check.
#[derive(Clone, Copy)]
struct AgentShapes {
    key: (u32, u32),
    grown: MaskBox,
    bare: MaskBox,
    road: MaskBox,
}

impl AgentShapes {
    fn of(w: &WorldAgent) -> AgentShapes {
        let grown = MaskBox::sized(w.length_m, w.width_m, MASK_BOX_MARGIN_M);
        AgentShapes {
            key: (w.length_m.to_bits(), w.width_m.to_bits()),
            grown,
            bare: grown.bare(),
            road: MaskBox::sized(w.length_m, w.width_m, MASK_OFFROAD_MARGIN_M),
        }
    }
}

/// A collision candidate of the prepared agent ([`MaskScratch::prepare`]).
#[derive(Clone, Copy)]
struct Candidate {
    /// The candidate's index in the world.
    j: usize,
    /// Checked with the bare boxes (the grown boxes overlap already, the bare ones do not).
    bare: bool,
    /// The candidate's bare box grown for the hit test (a pedestrian's reach, unless the
    /// agent is within it already), by size only.
    their_bare: MaskBox,
}

/// An agent's braking states as the collision mask assumes them ([`their_braking_states`]):
/// where its box is in each, and the bounds of their centres (see [`Bounds`]).
struct Brakes {
    /// Now and after each of [`MASK_MAX_BRAKE_STEPS`] steps: the box's centre and unit
    /// forward direction `[x, y, cos, sin]` (its size is the agent's box's now,
    /// [`MaskFrame::boxes`]; half the bytes of whole boxes, which the frame's cache holds).
    poses: [[f64; 4]; MASK_MAX_BRAKE_STEPS + 1],
    /// In each state, how the box is grown ([`ghost_spread`]; none for a pedestrian).
    spread: [Spread; MASK_MAX_BRAKE_STEPS + 1],
    bounds: Bounds,
    /// The largest [`Spread::extra_m`] of `spread` (m).
    spread_max_m: f64,
}

impl Brakes {
    /// The box in state `k`: `shape` (the agent's box now, or its bare box) moved there and
    /// grown by the state's spread (its radius an upper bound, for the circle tests).
    #[inline]
    fn at(&self, k: usize, shape: &MaskBox) -> MaskBox {
        let [x, y, c, s] = self.poses[k];
        let g = self.spread[k];
        MaskBox {
            c: [x + g.shift_m * c, y + g.shift_m * s],
            f: [c, s],
            hl: shape.hl + g.hl_m,
            hw: shape.hw + g.hw_m,
            r: shape.r + g.hl_m + g.hw_m,
        }
    }
}

/// What the masks know of a frame, shared by every agent's checks: read-only while they
/// run but for the braking states, each computed once on first demand (`OnceLock`, the same
/// values whichever check asks first), so threads checking different agents share it.
#[derive(Default)]
struct MaskFrame {
    /// Per agent: its boxes by size (remade when its size changes).
    shapes: Vec<AgentShapes>,
    /// Every agent's box now.
    boxes: Vec<MaskBox>,
    /// Per agent: its box's radius plus how far its ghost's boxes spread beyond it
    /// ([`ghost_spread_max_m`]; m).
    spread_radius: Vec<f64>,
    /// Per agent: `spread_radius` plus [`their_reach_m`] (m), for narrowing candidates.
    their_reach: Vec<f64>,
    /// Per agent, side by side for the candidate scan: its box's centre, its
    /// `spread_radius`, its speed (m/s) and its deck (m).
    scan: ScanColumns,
    /// Every agent's braking states (computed on demand).
    brakes: Vec<std::sync::OnceLock<Brakes>>,
    /// Frames of [`CELL_INDEX_MIN_AGENTS`] agents or more: every box's centre by cell, and
    /// the least and greatest box radius and speed (the collision candidates' reach is
    /// between what they give).
    cells: Option<(CellIndex, [f64; 2], [f64; 2])>,
    /// Never index, nor narrow the candidates (tests: the plain search to compare with).
    scan_only: bool,
    /// Per agent: a vehicle's path match at its state now, when the last frame made it
    /// (`push_frame_matching`).
    matched: Vec<Option<Matched>>,
}

/// What the collision mask's candidate scan reads of every agent of a frame, one column
/// per quantity (the scan runs down them without touching the agents' other fields).
#[derive(Default)]
struct ScanColumns {
    x_m: Vec<f64>,
    y_m: Vec<f64>,
    radius_m: Vec<f64>,
    speed_mps: Vec<f64>,
    deck_m: Vec<f64>,
}

impl ScanColumns {
    /// Whether agent `j` is within the loose reach of agent `i`'s lookahead (`base_m` and
    /// `horizon_s`, [`MaskScratch::prepare`]) on the same level, `j ≠ i`: the same values
    /// and IEEE operations as reading the agents and their boxes, and no branch.
    #[inline(always)]
    fn within(&self, i: usize, j: usize, base_m: f64, horizon_s: f64) -> bool {
        Self::test(
            [self.x_m[i], self.y_m[i], self.deck_m[i]],
            [self.x_m[j], self.y_m[j], self.radius_m[j], self.speed_mps[j], self.deck_m[j]],
            base_m,
            horizon_s,
        ) & (j != i)
    }

    /// [`ScanColumns::within`] but for `j ≠ i`, from agent `i`'s centre and height and
    /// agent `j`'s centre, radius, speed and height.
    #[inline(always)]
    fn test(me: [f64; 3], o: [f64; 5], base_m: f64, horizon_s: f64) -> bool {
        let (dx, dy) = (o[0] - me[0], o[1] - me[1]);
        let reach = base_m + o[2] + o[3] * horizon_s;
        // A NaN height keeps the agent, as the level test does.
        mask_same_level(o[4] - me[2]) & (dx * dx + dy * dy <= reach * reach)
    }

    /// Every agent `j` [`ScanColumns::within`] the reach of agent `i`, pushed onto `out` in
    /// index order: the tests of 64 agents at a time into a bit mask (no branch per agent),
    /// then its set bits.
    fn scan(&self, i: usize, base_m: f64, horizon_s: f64, out: &mut Vec<usize>) {
        let me = [self.x_m[i], self.y_m[i], self.deck_m[i]];
        let n = self.x_m.len();
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let columns = self.x_m[start..end]
                .iter()
                .zip(&self.y_m[start..end])
                .zip(&self.radius_m[start..end])
                .zip(&self.speed_mps[start..end])
                .zip(&self.deck_m[start..end]);
            let mut bits = 0u64;
            for (k, ((((&x, &y), &r), &v), &z)) in columns.enumerate() {
                bits |= u64::from(Self::test(me, [x, y, r, v, z], base_m, horizon_s)) << k;
            }
            if (start..end).contains(&i) {
                bits &= !(1u64 << (i - start));
            }
            while bits != 0 {
                out.push(start + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
    }
}

/// Whether the collision mask takes two agents whose decks differ by `dz_m` as on the same
/// level: less than [`MASK_LEVEL_SEPARATION_M`] apart, or a NaN deck (as
/// [`crate::features::same_level`]).
#[inline(always)]
fn mask_same_level(dz_m: f64) -> bool {
    let dz_m = dz_m.abs();
    // `|`, not `||`: no branch in the scans that call it.
    (dz_m < MASK_LEVEL_SEPARATION_M) | dz_m.is_nan()
}

/// Per-rollout scratch of the masks, prepared per agent by [`MaskScratch::prepare`]: the
/// frame's shared part, and the prepared agent's own (one such scratch per thread when a
/// frame's agents are checked in parallel, all sharing one frame).
#[derive(Default)]
struct MaskScratch {
    frame: std::sync::Arc<MaskFrame>,
    /// The prepared agent's agents to test as candidates (from the frame's cells), in
    /// index order.
    near: Vec<usize>,
    /// The prepared agent's collision candidates.
    cand: Vec<Candidate>,
    own: Vec<Kinematics>,
    own_boxes: Vec<MaskBox>,
    brake_steps: usize,
    /// The prepared agent.
    agent: usize,
    /// The prepared vehicle's route ahead ([`crate::features::route`]; empty when it is not
    /// on a path it follows) and its lateral offset from the route (m, left positive).
    route: crate::features::Route,
    route_lateral_m: f64,
    /// The prepared vehicle's box for the off-road tests (grown by [`MASK_OFFROAD_MARGIN_M`]).
    road_shape: MaskBox,
    /// Per yaw-rate column, whether the token being checked can brake holding it with its
    /// box on the road (filled on demand by the collision and off-road checks).
    road_memo: [Option<bool>; VEHICLE_YAW_RATE_RADPS.len()],
    /// The route continuation's collision level per acceleration row (computed on demand).
    route_levels: [Option<u16>; crate::tokens::VEHICLE_ACCEL_MPS2.len()],
    /// Box corners off the road now (vehicles with the off-road mask; else 4: no mask).
    off_now: u8,
    ok: Vec<Option<MaskKey>>,
    /// The full check's walk ((probability, token), module docs) and the mass after each
    /// of its points.
    walk: Vec<(f32, u16)>,
    walk_after: Vec<f32>,
    trig: SinCos,
}

/// The full mask's order of tokens: (off-road score, collision level, route level, off-road
/// depth), lowest best.
type MaskKey = (u8, u16, u16, u16);

/// The best [`MaskKey`] possible: clear and on the road.
const MASK_KEY_BEST: MaskKey = (0, COLL_CLEAR, COLL_CLEAR, 0);

/// What [`MaskScratch::check`] finds of a token (module docs): its off-road score, its
/// collision level (the best escape's) and its route continuation's collision level.
#[derive(Clone, Copy, Debug)]
struct Check {
    off_score: u8,
    coll: u16,
    along: u16,
    /// For a vehicle partly off the road: how far its corners are off after the token and
    /// after holding it, the larger (cm; 0 otherwise).
    off_depth_cm: u16,
}

impl Check {
    fn key(&self) -> MaskKey {
        (self.off_score, self.coll, self.along, self.off_depth_cm)
    }
}

/// What the masks need of an agent.
struct MaskAgent {
    class: AgentClass,
    length_m: f32,
}

impl MaskAgent {
    fn of(w: &WorldAgent) -> MaskAgent {
        MaskAgent { class: AgentClass::of(w.kind), length_m: w.length_m }
    }
}

impl MaskScratch {
    /// Starts a frame: every agent's current box; braking states forgotten. The frame must
    /// not be shared then (it is not once a parallel frame's checks have ended).
    fn new_frame(&mut self, world: &[WorldAgent]) {
        self.new_frame_with(world, &[]);
    }

    /// [`MaskScratch::new_frame`] with every agent's heading as a unit vector (cos, sin) when
    /// the caller has them (`headings`, one per agent: `f64::sin_cos`'s values; else
    /// computed here).
    fn new_frame_with(&mut self, world: &[WorldAgent], headings: &[[f64; 2]]) {
        let fr = std::sync::Arc::get_mut(&mut self.frame).expect("a frame is started when no check shares it");
        fr.shapes.truncate(world.len());
        for (j, w) in world.iter().enumerate() {
            if j == fr.shapes.len() {
                fr.shapes.push(AgentShapes::of(w));
            } else if fr.shapes[j].key != (w.length_m.to_bits(), w.width_m.to_bits()) {
                fr.shapes[j] = AgentShapes::of(w);
            }
        }
        fr.boxes.clear();
        let given = headings.len() == world.len();
        fr.boxes.extend(world.iter().zip(&fr.shapes).enumerate().map(|(j, (w, sh))| {
            let f = if given {
                headings[j]
            } else {
                let (s, c) = w.state.heading_rad.sin_cos();
                [c, s]
            };
            MaskBox { c: w.state.point_enu, f, ..sh.grown }
        }));
        // Each agent's box radius plus how far its ghost's boxes spread beyond it.
        fr.spread_radius.clear();
        fr.spread_radius.extend(
            fr.boxes
                .iter()
                .zip(world)
                .map(|(b, w)| b.radius() + ghost_spread_max_m(AgentClass::of(w.kind), w.state.speed_mps, b)),
        );
        fr.their_reach.clear();
        fr.their_reach.extend(
            fr.spread_radius
                .iter()
                .zip(world)
                .map(|(r, w)| r + their_reach_m(AgentClass::of(w.kind), w.state.speed_mps)),
        );
        let sc = &mut fr.scan;
        sc.x_m.clear();
        sc.x_m.extend(fr.boxes.iter().map(|b| b.c[0]));
        sc.y_m.clear();
        sc.y_m.extend(fr.boxes.iter().map(|b| b.c[1]));
        sc.radius_m.clear();
        sc.radius_m.extend_from_slice(&fr.spread_radius);
        sc.speed_mps.clear();
        sc.speed_mps.extend(world.iter().map(|w| w.state.speed_mps));
        sc.deck_m.clear();
        sc.deck_m.extend(world.iter().map(|w| w.deck_m));
        // Every agent's braking states unmade (an empty cell each: no payload is moved).
        fr.brakes.clear();
        fr.brakes.resize_with(world.len(), Default::default);
        let mut cells = fr.cells.take();
        if !fr.scan_only && world.len() >= CELL_INDEX_MIN_AGENTS {
            let (index, radius, speed) = cells.get_or_insert_with(Default::default);
            index.rebuild(fr.boxes.iter().map(|b| b.c), CANDIDATE_CELL_M);
            let span = |v: &mut [f64; 2], x: f64| *v = [v[0].min(x), v[1].max(x)];
            (*radius, *speed) = ([f64::INFINITY, f64::NEG_INFINITY], [f64::INFINITY, f64::NEG_INFINITY]);
            for (r, w) in fr.spread_radius.iter().zip(world) {
                span(radius, *r);
                span(speed, w.state.speed_mps);
            }
            fr.cells = cells;
        }
    }

    /// The frame's path matches, to be replaced after the frame (`push_frame_matching`).
    fn matched_mut(&mut self) -> &mut Vec<Option<Matched>> {
        &mut std::sync::Arc::get_mut(&mut self.frame).expect("matches are kept when no check shares the frame").matched
    }

    /// Prepares the checks of agent `i`: the collision candidates (agents whose box could
    /// meet its box within the braking lookahead and that do not overlap it already) with
    /// their braking states, and the corners off the road now.
    fn prepare(&mut self, mask: FeasibilityMask, map: &MapContext, world: &[WorldAgent], i: usize) {
        let a = MaskAgent::of(&world[i]);
        let now = world[i].state;
        self.agent = i;
        self.brake_steps =
            (((now.speed_mps + 3.0) / (MASK_BRAKE_MPS2 * DT_S)).ceil() as usize).min(MASK_MAX_BRAKE_STEPS);
        self.cand.clear();
        let fr = &*self.frame;
        self.near.clear();
        if mask.collision {
            let me = fr.boxes[i];
            let horizon_s = DT_S * (self.brake_steps + 1) as f64;
            let base = me.radius() + (now.speed_mps + 3.0) * horizon_s;
            // The agents to test: every one, or those in the cells within the largest reach
            // any of them can have (each reach below is `base + radius + speed × horizon`,
            // between these two by the monotony of rounding), in index order as the scan.
            let reach_m = fr.cells.as_ref().map(|(_, radius, speed)| {
                let ends = [base + radius[0] + speed[0] * horizon_s, base + radius[1] + speed[1] * horizon_s];
                ends[0].abs().max(ends[1].abs())
            });
            // Those within reach of the lookahead and on the same level.
            let sc = &fr.scan;
            debug_assert_eq!(sc.x_m.len(), world.len(), "the frame's agents");
            match (&fr.cells, reach_m) {
                (Some((index, ..)), Some(r))
                    if index.points() == world.len() && !r.is_nan() && CellIndex::answers(me.c, r) =>
                {
                    index.near(me.c, r, |j| self.near.push(j));
                    self.near.sort_unstable();
                    self.near.retain(|&j| sc.within(i, j, base, horizon_s));
                }
                _ => sc.scan(i, base, horizon_s, &mut self.near),
            }
        }
        self.route = Default::default();
        self.route_levels = Default::default();
        let mut own_reach_m = own_reach_m(a.class, now.speed_mps);
        if a.class == AgentClass::Vehicle
            && !self.near.is_empty()
            && let Some(m) =
                Matched::at(fr.matched.get(i), &now, world[i].deck_m, MASK_ROUTE_MATCH_M).unwrap_or_else(|| {
                    map.match_path_on(now.point_enu, now.heading_rad, MASK_ROUTE_MATCH_M, Some(world[i].deck_m))
                })
            && m.heading_error_rad.abs() < MASK_ROUTE_HEADING_RAD
        {
            let v = now.speed_mps + MASK_BRAKE_MPS2 * DT_S;
            let horizon_m = v * DT_S + v * v / (2.0 * MASK_BRAKE_MPS2) + f64::from(a.length_m) + 1.0;
            self.route = crate::features::route(map, m.path, m.s_m, &Intent::Choice(world[i].intent), horizon_m);
            self.route_lateral_m = m.lateral_m;
            own_reach_m = own_reach_m.max(route_reach_m(map, &self.route, &m, &now));
        }
        if mask.collision && !self.near.is_empty() {
            let me = fr.boxes[i];
            let me_bare = MaskBox { c: me.c, f: me.f, ..fr.shapes[i].bare };
            for &j in &self.near {
                let (w, o) = (&world[j], &fr.boxes[j]);
                // Only the agents whose circles could meet the agent's in some state compared
                // (the others leave every level clear; module docs, "Candidates").
                let (dx, dy) = (o.c[0] - me.c[0], o.c[1] - me.c[1]);
                let apart_m = me.radius() + own_reach_m + fr.their_reach[j] + MASK_REACH_SLACK_M;
                if !fr.scan_only && dx * dx + dy * dy > apart_m * apart_m {
                    continue;
                }
                let step_reach_m =
                    if AgentClass::of(w.kind) == AgentClass::Pedestrian { MASK_PEDESTRIAN_REACH_M } else { 0.0 };
                let o_bare = MaskBox { c: o.c, f: o.f, ..fr.shapes[j].bare };
                let their_bare = if step_reach_m > 0.0 {
                    let grow_m = (me_bare.growth_room(&o_bare) - MASK_GROW_GAP_M).clamp(0.0, step_reach_m);
                    fr.shapes[j].grown.bare_grown(grow_m)
                } else {
                    fr.shapes[j].bare
                };
                if !me.overlaps(o) {
                    self.cand.push(Candidate { j, bare: false, their_bare });
                } else if !me_bare.overlaps(&o_bare) {
                    self.cand.push(Candidate { j, bare: true, their_bare });
                }
            }
            let (own, trig) = (&mut self.own, &mut self.trig);
            for &Candidate { j, .. } in &self.cand {
                fr.brakes[j].get_or_init(|| {
                    their_braking_states(map, &world[j], fr.matched.get(j), MASK_MAX_BRAKE_STEPS, own, trig);
                    debug_assert_eq!(own.len(), MASK_MAX_BRAKE_STEPS + 1);
                    let mut poses = [[0.0; 4]; MASK_MAX_BRAKE_STEPS + 1];
                    for (p, s) in poses.iter_mut().zip(own.iter()) {
                        let (sin, cos) = trig.of(s.heading_rad);
                        *p = [s.point_enu[0], s.point_enu[1], cos, sin];
                    }
                    let mut spread = [Spread::default(); MASK_MAX_BRAKE_STEPS + 1];
                    if AgentClass::of(world[j].kind) == AgentClass::Vehicle {
                        let grown = fr.shapes[j].grown;
                        let of = GhostSpread::new(world[j].state.speed_mps, grown.hl, grown.hw);
                        for (i, g) in spread.iter_mut().enumerate() {
                            *g = of.at(i);
                        }
                    }
                    let spread_max_m = spread[MASK_MAX_BRAKE_STEPS].extra_m();
                    Brakes { bounds: Bounds::of(own.iter().map(|s| s.point_enu)), poses, spread, spread_max_m }
                });
            }
        }
        self.road_shape = MaskBox { c: now.point_enu, f: fr.boxes[i].f, ..fr.shapes[i].road };
        self.off_now =
            if mask.offroad && a.class == AgentClass::Vehicle { corners_off_road(map, &self.road_shape) } else { 4 };
    }

    /// Whether the masks are idle for the prepared agent.
    fn idle(&self) -> bool {
        self.cand.is_empty() && self.off_now >= 4
    }

    /// (collision level, off-road score) of token `t` for the prepared agent `i`; the
    /// score is the larger count of box corners off the drivable area after the token and
    /// after holding it (0 without the off-road mask).
    fn check(&mut self, map: &MapContext, world: &[WorldAgent], i: usize, t: u16) -> Check {
        self.check_within(map, world, i, t, None).expect("a check without a bound always finishes")
    }

    /// [`MaskScratch::check`], or `None` as soon as the token's [`MaskKey`] is known to be
    /// above `bound` (the full mask keeps only the tokens of the lowest key, so such a token
    /// is masked whatever its exact key). The off-road corner counts come first: they bound
    /// the score from below without the escape test, and where that bound already exceeds
    /// `bound`'s score the collision checks are skipped; where it equals it, the collision
    /// level only needs to be exact up to `bound`'s. Against a bound whose score is 0 the
    /// collision level comes first instead (exact up to the bound's; a token above it is
    /// masked whatever its score), and the corner counts only for the tokens within it.
    fn check_within(
        &mut self,
        map: &MapContext,
        world: &[WorldAgent],
        i: usize,
        t: u16,
        bound: Option<MaskKey>,
    ) -> Option<Check> {
        let a = MaskAgent::of(&world[i]);
        let now = world[i].state;
        let first = crate::tokens::step_by(a.class, &now, t, |x| self.trig.of(x));
        self.road_memo = Default::default();
        // Against a bound whose off-road score is 0 (the usual one), a token is kept only
        // with a score of 0 and its collision level within the bound's: the collision level
        // first then, as most tokens of such a walk are above it, and their off-road boxes
        // (the token held for a second) are never made.
        let mut early = None;
        if let Some(b) = bound.filter(|b| b.0 == 0 && !self.cand.is_empty()) {
            let c = self.collision_level(map, a.class, t, &first, b.1);
            if c > b.1 {
                return None;
            }
            early = Some(c);
        }
        // (box after the token, box after holding it, their corners off the road).
        let mut road = None;
        let mut off_at_least = 0;
        if self.off_now < 4 {
            let mut s = first;
            // The prepared agent's road box (its size) moved to the state after the token.
            let shape = self.road_shape.moved_to_by(&s, &mut self.trig);
            let first_off = corners_off_road(map, &shape);
            for _ in 0..MASK_OFFROAD_HOLD_STEPS {
                s = crate::tokens::step_by(a.class, &s, t, |x| self.trig.of(x));
            }
            let held = shape.moved_to_by(&s, &mut self.trig);
            let held_off = corners_off_road(map, &held);
            off_at_least = if self.off_now == 0 && first_off > 0 {
                OFFROAD_NO_ESCAPE + first_off
            } else {
                first_off.max(held_off)
            };
            road = Some((shape, held, first_off, held_off));
        }
        if bound.is_some_and(|b| off_at_least > b.0) {
            return None;
        }
        let limit = match bound {
            Some(b) if off_at_least == b.0 => b.1,
            _ => u16::MAX,
        };
        let (mut coll, mut along) = (COLL_CLEAR, COLL_CLEAR);
        if !self.cand.is_empty() {
            // With the early level, the limit here is the same (the score is 0, the bound's).
            coll = match early {
                Some(c) => c,
                None => self.collision_level(map, a.class, t, &first, limit),
            };
            if coll > limit {
                return None;
            }
            if a.class == AgentClass::Vehicle {
                along = self.route_level(map, t, &now, &first);
            }
        }
        let (mut off_score, mut off_depth_cm) = (0, 0);
        if let Some((shape, held, first_off, held_off)) = road {
            off_score = first_off.max(held_off);
            if self.off_now > 0 {
                // Partly off: how far the corners are off, in centimetres.
                let cm = |b: &MaskBox| b.corners().iter().map(|c| map.off_road_depth(*c)).sum::<f64>() * 100.0;
                off_depth_cm = cm(&shape).max(cm(&held)).round().min(f64::from(u16::MAX)) as u16;
            }
            if self.off_now == 0
                && !(first_off == 0 && self.can_brake_on_road(map, &shape, &first, vehicle_yaw_index(t)))
            {
                off_score = OFFROAD_NO_ESCAPE + first_off;
            }
        }
        Some(Check { off_score, coll, along, off_depth_cm })
    }

    /// The collision level of token `t` for the prepared agent (of class `class`), at
    /// `first` after it: a vehicle's best escape ([`MaskScratch::escape_level`]), a
    /// walker's braking ([`MaskScratch::continuation_level`]); exact up to `limit`.
    fn collision_level(&mut self, map: &MapContext, class: AgentClass, t: u16, first: &Kinematics, limit: u16) -> u16 {
        match class {
            AgentClass::Vehicle => self.escape_level(map, t, first, limit),
            AgentClass::Pedestrian => self.continuation_level(class, t, first, 0.0, limit),
        }
    }

    /// The collision level of vehicle token `t` (module docs): the best level of its escapes
    /// after it (`first`), hardest braking holding the yaw rate of the token's column, of the
    /// columns on either side of it, or straight on, each no sharper than
    /// [`MASK_LATERAL_MPS2`] allows at `first`'s speed (the nearest towards straight on
    /// that does); with the off-road mask, only escapes that keep the box on the road count
    /// while there is one.
    /// Exact up to `limit`; above it, some level above `limit` ([`MaskScratch::own_level`]).
    fn escape_level(&mut self, map: &MapContext, t: u16, first: &Kinematics, limit: u16) -> u16 {
        let n = VEHICLE_YAW_RATE_RADPS.len();
        let zero = n / 2;
        let allowed = |j: usize| j == zero || VEHICLE_YAW_RATE_RADPS[j].abs() * first.speed_mps <= MASK_LATERAL_MPS2;
        let toward_zero = |mut j: usize| {
            while !allowed(j) {
                j = if j < zero { j + 1 } else { j - 1 };
            }
            j
        };
        let col = toward_zero(vehicle_yaw_index(t));
        let mut cols = [col, toward_zero(col.saturating_sub(1)), toward_zero((col + 1).min(n - 1)), zero];
        // Each column once, in that order.
        for k in 1..cols.len() {
            if cols[..k].contains(&cols[k]) {
                cols[k] = usize::MAX;
            }
        }
        let (mut best, mut best_off_road) = (u16::MAX, u16::MAX);
        for j in cols.into_iter().filter(|&j| j != usize::MAX) {
            // A column counts only below the best so far: its level needs to be exact only
            // up to one less (above that, `own_level` stops as soon as it knows).
            let lim = if best == u16::MAX { limit } else { limit.min(best - 1) };
            let l = self.continuation_level(AgentClass::Vehicle, t, first, VEHICLE_YAW_RATE_RADPS[j], lim);
            if l >= best {
                continue;
            }
            if self.off_now == 0 && !self.column_on_road(map, j) {
                best_off_road = best_off_road.min(l);
                continue;
            }
            best = l;
            if best == COLL_CLEAR {
                break;
            }
        }
        if best == u16::MAX && self.off_now == 0 {
            // None of them stays on the road (a bend sharper than the lateral limit allows
            // at this speed): the first other column, from the token's own outwards, that does.
            for d in 0..n {
                let j = escape_column(vehicle_yaw_index(t), d, n);
                if cols.contains(&j) {
                    continue;
                }
                let l = self.continuation_level(AgentClass::Vehicle, t, first, VEHICLE_YAW_RATE_RADPS[j], limit);
                if self.column_on_road(map, j) {
                    return l;
                }
            }
        }
        if best == u16::MAX { best_off_road } else { best }
    }

    /// Whether the continuation in `own` (column `j`'s escape of the token being checked)
    /// keeps the box on the road, remembered per column for the token's off-road test.
    fn column_on_road(&mut self, map: &MapContext, j: usize) -> bool {
        if let Some(ok) = self.road_memo[j] {
            return ok;
        }
        let ok = self.own_on_road(map, VEHICLE_YAW_RATE_RADPS[j]);
        self.road_memo[j] = Some(ok);
        ok
    }

    /// [`can_brake_on_road`] for the token being checked (`first` after it, box `shape`),
    /// with the columns the collision check tried remembered.
    fn can_brake_on_road(&mut self, map: &MapContext, shape: &MaskBox, first: &Kinematics, col: usize) -> bool {
        // A column the collision check already found on the road answers it: the result
        // is whether any column keeps the box on the road, whichever is tried first.
        if self.road_memo.contains(&Some(true)) {
            return true;
        }
        let n = VEHICLE_YAW_RATE_RADPS.len();
        let (memo, trig) = (&mut self.road_memo, &mut self.trig);
        (0..n).map(|d| escape_column(col, d, n)).any(|j| {
            *memo[j].get_or_insert_with(|| {
                brakes_on_road_within(map, shape, first, VEHICLE_YAW_RATE_RADPS[j], MASK_ESCAPE_MAX_STEPS, trig)
            })
        })
    }

    /// The collision level of token `t` (module docs) when the prepared agent, at `first`
    /// after the token, brakes holding `yaw`; leaves the
    /// continuation's states and boxes in `own` and `own_boxes`.
    /// Exact up to `limit` ([`MaskScratch::own_level`]).
    fn continuation_level(&mut self, class: AgentClass, t: u16, first: &Kinematics, yaw: f64, limit: u16) -> u16 {
        braking_states(class, first, yaw, self.brake_steps, &mut self.own, &mut self.trig);
        self.own_level(class, t, limit)
    }

    /// The collision level of vehicle token `t` when the prepared vehicle, after the token
    /// (`first`), brakes along its route keeping its lateral offset (module docs); clear
    /// when it has no route. The same for every token of an acceleration row (cached).
    fn route_level(&mut self, map: &MapContext, t: u16, now: &Kinematics, first: &Kinematics) -> u16 {
        if self.route.is_empty() {
            return COLL_CLEAR;
        }
        let row = (t as usize).min(crate::tokens::VEHICLE_TOKENS - 1) / VEHICLE_YAW_RATE_RADPS.len();
        if let Some(l) = self.route_levels[row] {
            return l;
        }
        let v1 = first.speed_mps;
        let s1 = 0.5 * (now.speed_mps + v1) * DT_S;
        self.own.clear();
        // The lookups move forward along the route: each path's search starts where the last
        // one on it ended.
        let mut cursor = RouteCursor::default();
        for k in 0..=self.brake_steps {
            let t_s = (k as f64 * DT_S).min(v1 / MASK_BRAKE_MPS2);
            let s_m = s1 + v1 * t_s - 0.5 * MASK_BRAKE_MPS2 * t_s * t_s;
            let (q, d, heading_rad) = route_at(map, &self.route, s_m, &mut cursor);
            let lat = self.route_lateral_m;
            self.own.push(Kinematics {
                point_enu: [q[0] - lat * d[1], q[1] + lat * d[0]],
                heading_rad,
                speed_mps: (v1 - MASK_BRAKE_MPS2 * k as f64 * DT_S).max(0.0),
            });
        }
        let l = self.own_level(AgentClass::Vehicle, t, u16::MAX);
        self.route_levels[row] = Some(l);
        l
    }

    /// The collision level of token `t` for the continuation in `own`, exact when it is at
    /// most `limit`; above it, some level above `limit` (the candidates left unchecked).
    /// Sets `own_boxes`, whose directions are computed when a test first needs them.
    fn own_level(&mut self, class: AgentClass, t: u16, limit: u16) -> u16 {
        let MaskScratch { frame, own, own_boxes, trig, cand, agent, .. } = self;
        let fr = &**frame;
        own_boxes.clear();
        let shape = fr.boxes[*agent];
        let unset = MaskBox { f: [f64::NAN; 2], ..shape };
        own_boxes.extend(own.iter().map(|s| MaskBox { c: s.point_enu, ..unset }));
        let mine_bare = fr.shapes[*agent].bare;
        let own_bounds = Bounds::of(own.iter().map(|s| s.point_enu));
        let mut coll = COLL_CLEAR;
        // own[k] is the state at step k + 1, brakes[j][k + 1] theirs.
        // Grown boxes first; once they meet, the bare boxes (which meet only where the
        // grown ones do) from that step on.
        'cands: for &Candidate { j, bare, their_bare } in cand.iter() {
            if coll > limit {
                break;
            }
            // No circle of theirs meets one of ours (the grown ones are the larger): the
            // candidate changes nothing, clear or not.
            let theirs_all = fr.brakes[j].get().expect("a candidate's braking states are made by `prepare`");
            let their_shape = fr.boxes[j];
            if own_bounds.apart(&theirs_all.bounds, shape.radius() + their_shape.radius() + theirs_all.spread_max_m) {
                continue;
            }
            let mut level = if bare { COLL_BARE_CLEAR } else { COLL_CLEAR };
            for k in 0..own.len() {
                let theirs = theirs_all.at((k + 1).min(MASK_MAX_BRAKE_STEPS), &their_shape);
                if level == COLL_CLEAR
                    && own_boxes[k].circles_meet(&theirs)
                    && own_box_of(own_boxes, own, trig, k).axes_overlap(&theirs)
                {
                    level = COLL_BARE_CLEAR;
                }
                if level == COLL_BARE_CLEAR {
                    let theirs = theirs_all.at((k + 1).min(MASK_MAX_BRAKE_STEPS), &their_bare);
                    let mine = MaskBox { c: own_boxes[k].c, ..mine_bare };
                    if mine.circles_meet(&theirs)
                        && (MaskBox { f: own_box_of(own_boxes, own, trig, k).f, ..mine }).axes_overlap(&theirs)
                    {
                        // The earlier the hit, the worse.
                        coll = coll.max(hit_level(class, t, k));
                        if k == 0 {
                            break 'cands;
                        }
                        continue 'cands;
                    }
                }
                if own[k].speed_mps <= 0.0 && k > 0 {
                    break;
                }
            }
            // A candidate checked with bare boxes from the start is clear when they are.
            if !bare {
                coll = coll.max(level);
            }
        }
        coll
    }

    /// `own_boxes[k]` with its direction (computed once).
    fn own_box(&mut self, k: usize) -> MaskBox {
        own_box_of(&mut self.own_boxes, &self.own, &mut self.trig, k)
    }

    /// Whether the continuation in `own` (hardest braking holding `yaw`) keeps the prepared
    /// vehicle's off-road box on the drivable area until it stops: [`brakes_on_road`] from
    /// `own[0]` (the same value, whichever of the two fills [`MaskScratch::road_memo`]),
    /// reusing the states and the box directions computed.
    fn own_on_road(&mut self, map: &MapContext, yaw: f64) -> bool {
        for k in 0..self.own.len() {
            let d = self.own_box(k);
            if any_corner_off_road(map, &MaskBox { c: d.c, f: d.f, ..self.road_shape }) {
                return false;
            }
            if self.own[k].speed_mps <= 0.0 {
                return true;
            }
        }
        // Not stopped within the collision lookahead: brake on from the last state, up to
        // the same horizon.
        let last = self.own.len() - 1;
        let steps = MASK_ESCAPE_MAX_STEPS.saturating_sub(last);
        brakes_on_road_within(map, &self.road_shape, &self.own[last], yaw, steps, &mut self.trig)
    }

    /// Whether a [`MaskScratch::check`] result passes both masks.
    fn feasible(&self, c: Check) -> bool {
        // On the road: stay on it. Partly off it: come back at least one corner (or whatever
        // is the best possible, decided by the full mask).
        c.coll == COLL_CLEAR
            && c.along == COLL_CLEAR
            && (self.off_now >= 4 || c.off_score == 0 || c.off_score < self.off_now)
    }

    /// Sets the logits of the prepared agent's infeasible tokens to −∞ (module docs): the
    /// tokens with the best off-road score are kept, and among them those with the best
    /// collision level.
    /// `sampled` is the token drawn and its check; the others are checked against the lowest
    /// key found so far ([`MaskScratch::check_within`]), which gives the same tokens as
    /// checking every one in full.
    fn mask(
        &mut self,
        map: &MapContext,
        world: &[WorldAgent],
        i: usize,
        sampled: (u16, Check),
        logits: &mut [f32],
        sampling: &SamplingConfig,
    ) {
        let mut ok = std::mem::take(&mut self.ok);
        ok.clear();
        // Keep the tokens of the best (off-road score, collision level), compared in that
        // order: the road is known, the others' braking is a guess. The off-road score is 0
        // for an agent the off-road mask leaves alone.
        let mut best = sampled.1.key();
        let n = logits.len() as u16;
        ok.resize(n as usize, None);
        // The hardest braking straight on first: it is most often of the best key, and the
        // lower the bound, the sooner the other tokens' checks stop.
        let probe = match AgentClass::of(world[i].kind) {
            AgentClass::Vehicle => (VEHICLE_YAW_RATE_RADPS.len() / 2) as u16,
            AgentClass::Pedestrian => (crate::tokens::PEDESTRIAN_DV_MPS.len() / 2) as u16,
        }
        .min(n.saturating_sub(1));
        // The walk (module docs): the probe, then the others likeliest first.
        let mut walk = std::mem::take(&mut self.walk);
        walk.clear();
        let max = crate::sampling::max_logit(logits);
        let p = |t: u16| {
            let x = logits[t as usize] - max;
            (exp_f32(if sampling.temperature > 0.0 { x / sampling.temperature } else { x }), t)
        };
        walk.push(p(probe));
        walk.extend((0..n).filter(|&t| t != probe).map(p));
        walk[1..].sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // The mass of the tokens after each point of the walk.
        let mut after = std::mem::take(&mut self.walk_after);
        after.clear();
        after.resize(walk.len() + 1, 0.0);
        for j in (0..walk.len()).rev() {
            after[j] = after[j + 1] + walk[j].0;
        }
        let mut best_mass = 0.0f32;
        for (j, &(e, t)) in walk.iter().enumerate() {
            let c = if t == sampled.0 { Some(sampled.1) } else { self.check_within(map, world, i, t, Some(best)) };
            let k = c.map(|c| c.key());
            if let Some(k) = k {
                best = best.min(k);
                if k == MASK_KEY_BEST {
                    best_mass += e;
                }
            }
            ok[t as usize] = k;
            if best == MASK_KEY_BEST && best_mass >= MASK_STOP_FRACTION * (best_mass + after[j + 1]) {
                break;
            }
        }
        (self.walk, self.walk_after) = (walk, after);
        for (l, k) in logits.iter_mut().zip(&ok) {
            if k.is_none_or(|k| k > best) {
                *l = f32::NEG_INFINITY;
            }
        }
        self.ok = ok;
    }

    /// The masks around a sampled token (module docs): `tok` when it is feasible (or the
    /// masks are idle for agent `i`), else a token redrawn with `u_redraw` from `logits`
    /// with the infeasible tokens set to −∞ (in place).
    #[allow(clippy::too_many_arguments)]
    fn filter(
        &mut self,
        mask: FeasibilityMask,
        map: &MapContext,
        world: &[WorldAgent],
        i: usize,
        tok: u16,
        logits: &mut [f32],
        sampling: &SamplingConfig,
        u_redraw: f32,
        sort_buf: &mut Vec<(f32, u16)>,
    ) -> u16 {
        self.prepare(mask, map, world, i);
        if self.idle() {
            return tok;
        }
        let c = self.check(map, world, i, tok);
        if self.feasible(c) {
            return tok;
        }
        self.mask(map, world, i, (tok, c), logits, sampling);
        sample_token(logits, sampling, u_redraw, sort_buf)
    }
}

/// `own_boxes[k]` with its direction, the heading's of `own[k]` (computed once).
fn own_box_of(own_boxes: &mut [MaskBox], own: &[Kinematics], trig: &mut SinCos, k: usize) -> MaskBox {
    let b = &mut own_boxes[k];
    if b.f[0].is_nan() {
        let (s, c) = trig.of(own[k].heading_rad);
        b.f = [c, s];
    }
    *b
}

/// Rolls out one sample of one scenario (module docs) with the default
/// [`FeasibilityMask`] (both masks on).
pub fn rollout_one(
    net: &Network,
    map: &MapContext,
    scenario: &Scenario,
    cfg: &RolloutConfig,
    sample: u32,
    driver: Option<&dyn AgentDriver>,
) -> Vec<(i32, TrajectoryRecord)> {
    rollout_one_masked(net, map, scenario, cfg, sample, driver, FeasibilityMask::default())
}

/// [`rollout_one`] with the given feasibility masks.
pub fn rollout_one_masked(
    net: &Network,
    map: &MapContext,
    scenario: &Scenario,
    cfg: &RolloutConfig,
    sample: u32,
    driver: Option<&dyn AgentDriver>,
    mask: FeasibilityMask,
) -> Vec<(i32, TrajectoryRecord)> {
    let mut live = LiveRollout::start(std::borrow::Cow::Borrowed(scenario), map, cfg.clone(), sample, mask);
    let mut out = Vec::with_capacity(live.agents.len() * cfg.steps as usize);
    for _ in 1..=cfg.steps {
        live.step(net, map, driver, &mut out);
    }
    out
}

/// The scenario `scenario_id` of every agent in `history` (the last records of a simulation,
/// oldest first, the current ones last; the last [`HISTORY_STEPS`] + 1 steps at 0.1 s are
/// used): the agents present in the last step, with their run ids, each with its recorded
/// past. What [`LiveRollout::from_history`] starts from, and what a caller rolling out the
/// live world in chunks (the viewer's GPU traffic) cuts each chunk from.
pub fn scenario_from_history(history: &[Vec<TrajectoryRecord>], scenario_id: u64) -> Scenario {
    let n = history.len().min(HISTORY_STEPS + 1);
    let recent = &history[history.len() - n..];
    let mut rows = Vec::new();
    for (k, frame) in recent.iter().enumerate() {
        let f = k as i32 - (n as i32 - 1);
        rows.extend(frame.iter().map(|r| (f, r.clone())));
    }
    let now = recent.last().and_then(|f| f.first());
    Scenario {
        scenario_id,
        center_agent_id: now.map_or(0, |r| r.agent_id),
        current_time_s: now.map_or(0.0, |r| r.time_s),
        current_step: now.map_or(0, |r| r.step),
        agents: recent.last().map(|f| f.iter().map(|r| r.agent_id).collect()).unwrap_or_default(),
        rows,
    }
}

/// A rollout advanced one frame at a time ([`LiveRollout::step`]): what
/// [`rollout_one_masked`] runs, for callers that interleave frames with their own work (a
/// viewer whose traffic the model drives, frame by frame, for as long as it runs).
/// `cfg.steps` is not used: the rollout goes on while it is stepped.
pub struct LiveRollout<'a> {
    scenario: std::borrow::Cow<'a, Scenario>,
    cfg: RolloutConfig,
    sample: u32,
    mask: FeasibilityMask,
    /// The agents now (history kept to [`HISTORY_STEPS`] + 1).
    pub agents: Vec<RolloutAgent>,
    /// The last frame produced (0 at the start).
    pub frame: i32,
    scratch: Scratch,
    feats: Vec<f32>,
    classes: Vec<AgentClass>,
    model_rows: Vec<usize>,
    logits: Vec<f32>,
    sort_buf: Vec<(f32, u16)>,
    next: Vec<Kinematics>,
    world: Vec<WorldAgent>,
    near: Vec<(f64, usize)>,
    /// The network's scratch per block of rows of a frame run in parallel.
    scratches: Vec<Scratch>,
    ms: MaskScratch,
    /// The masks' scratch (and a sort buffer) per block of agents of a frame checked in
    /// parallel.
    workers: Vec<(MaskScratch, Vec<(f32, u16)>)>,
    feature_scratch: FeatureScratch,
    /// The last frame's tokens per model-driven agent: (sampled, kept after the masks).
    choices: Vec<(u16, u16)>,
    /// Frames with this many model-driven agents or more run in parallel
    /// ([`PARALLEL_MIN_AGENTS`]; tests set it higher to compare; [`in_parallel`]).
    parallel_min_agents: usize,
}

impl<'a> LiveRollout<'a> {
    /// Sample `sample` of `scenario` ([`start_agents`]), before its first frame.
    pub fn start(
        scenario: std::borrow::Cow<'a, Scenario>,
        map: &MapContext,
        cfg: RolloutConfig,
        sample: u32,
        mask: FeasibilityMask,
    ) -> LiveRollout<'a> {
        let agents = start_agents(&scenario, map, cfg.seed, sample);
        LiveRollout {
            scenario,
            cfg,
            sample,
            mask,
            agents,
            frame: 0,
            scratch: Scratch::default(),
            feats: Vec::new(),
            classes: Vec::new(),
            model_rows: Vec::new(),
            logits: Vec::new(),
            sort_buf: Vec::new(),
            next: Vec::new(),
            world: Vec::new(),
            near: Vec::new(),
            scratches: Vec::new(),
            ms: MaskScratch::default(),
            workers: Vec::new(),
            parallel_min_agents: PARALLEL_MIN_AGENTS,
            feature_scratch: FeatureScratch::default(),
            choices: Vec::new(),
        }
    }

    /// A live rollout of every agent in `history` (the last records of a simulation, oldest
    /// first, the current ones last, at most [`HISTORY_STEPS`] + 1 steps at 0.1 s): the
    /// agents present in the last step, each with its contiguous recorded past. The
    /// scenario id is 0; `seed` keys the draws.
    pub fn from_history(
        history: &[Vec<TrajectoryRecord>],
        map: &MapContext,
        seed: u64,
        sampling: SamplingConfig,
    ) -> LiveRollout<'static> {
        let scenario = scenario_from_history(history, 0);
        let cfg = RolloutConfig { steps: 0, samples: 1, seed, sampling };
        LiveRollout::start(std::borrow::Cow::Owned(scenario), map, cfg, 0, FeasibilityMask::default())
    }

    /// Produces the next frame: every agent's state (the driver's where it claims one, the
    /// model's otherwise), appended to `out` as `(frame, record)` in agent order.
    pub fn step(
        &mut self,
        net: &Network,
        map: &MapContext,
        driver: Option<&dyn AgentDriver>,
        out: &mut Vec<(i32, TrajectoryRecord)>,
    ) {
        let mut feats = std::mem::take(&mut self.feats);
        feats.clear();
        self.begin_frame(map, driver, &mut feats);
        let mut logits = std::mem::take(&mut self.logits);
        if in_parallel(self.parallel_min_agents, self.model_rows.len()) {
            forward_in_parallel(net, &feats, &self.classes, &mut self.scratches, &mut logits);
        } else if !self.model_rows.is_empty() {
            net.forward(&feats, &self.classes, &mut self.scratch, &mut logits);
        }
        self.end_frame(map, &mut logits, out);
        (self.feats, self.logits) = (feats, logits);
    }

    /// The last frame's model-driven agents: (agent index, class, the network's input row,
    /// the token sampled from the network's distribution, the token kept after the masks),
    /// in agent order. Empty before the first frame.
    pub fn last_choices(&self) -> impl Iterator<Item = (usize, AgentClass, &[f32], u16, u16)> + '_ {
        self.model_rows
            .iter()
            .zip(&self.classes)
            .zip(self.feats.chunks(FEATURE_DIM))
            .zip(&self.choices)
            .map(|(((&i, &c), row), &(sampled, kept))| (i, c, row, sampled, kept))
    }

    /// The first half of [`LiveRollout::step`]: the driven agents' states, and the features
    /// of the model-driven ones (`model_rows`, with their `classes`), the network's input,
    /// appended to `feats` (a group's shared batch, [`rollout_group`]).
    fn begin_frame(&mut self, map: &MapContext, driver: Option<&dyn AgentDriver>, feats: &mut Vec<f32>) {
        let (scenario, sample) = (&self.scenario, self.sample);
        let agents = &mut self.agents;
        let frame = self.frame + 1;
        self.frame = frame;
        let time_s = scenario.current_time_s + DT_S * f64::from(frame - 1);
        self.world.clear();
        self.world.extend(world_of(agents));
        self.next.clear();
        self.next.extend(self.world.iter().map(|w| w.state));
        let mut external = vec![false; agents.len()];
        if let Some(d) = driver {
            for (i, a) in agents.iter().enumerate() {
                if let Some(k) = d.next_state(scenario.scenario_id, sample, a.id, frame, &self.world) {
                    self.next[i] = k;
                    external[i] = true;
                }
            }
        }
        let views: Vec<AgentView> = agents.iter().map(RolloutAgent::view).collect();
        self.feature_scratch.new_frame(&views);
        self.classes.clear();
        self.model_rows.clear();
        for (i, a) in agents.iter().enumerate() {
            if !external[i] {
                self.classes.push(a.class);
                self.model_rows.push(i);
            }
        }
        // Each row is a function of the frame alone: computed on any thread, the same bits.
        let start = feats.len();
        feats.resize(start + self.model_rows.len() * FEATURE_DIM, 0.0);
        let (matched, world, frame_scratch) = (&self.ms.frame.matched, &self.world, &self.feature_scratch);
        let one = |row: &mut [f32], i: usize, near: &mut Vec<(f64, usize)>| {
            let kept = Matched::for_features(matched.get(i), &world[i].state, world[i].deck_m);
            agent_features_with(map, &views, i, time_s, row, kept, frame_scratch, near);
        };
        let rows = &mut feats[start..];
        if in_parallel(self.parallel_min_agents, self.model_rows.len()) {
            rows.par_chunks_mut(FEATURE_DIM)
                .zip(self.model_rows.par_iter())
                .with_min_len(16)
                .for_each_init(Vec::new, |near, (row, &i)| one(row, i, near));
        } else {
            for (row, &i) in rows.chunks_mut(FEATURE_DIM).zip(&self.model_rows) {
                one(row, i, &mut self.near);
            }
        }
    }

    /// The second half of [`LiveRollout::step`], given the network's logits of
    /// [`LiveRollout::begin_frame`]'s rows (ragged, [`logit_offsets`] of `classes`): a token
    /// per model-driven agent through the masks, every agent's next state, the frame's
    /// records.
    fn end_frame(&mut self, map: &MapContext, logits: &mut [f32], out: &mut Vec<(i32, TrajectoryRecord)>) {
        let (scenario, cfg, sample, mask, frame) = (&self.scenario, &self.cfg, self.sample, self.mask, self.frame);
        let n = self.model_rows.len();
        let parallel = in_parallel(self.parallel_min_agents, n);
        let agents = &mut self.agents;
        if n > 0 {
            if mask != FeasibilityMask::NONE {
                // The frame's headings as the features took them (the same states).
                self.ms.new_frame_with(&self.world, self.feature_scratch.headings());
            }
            let world = &self.world;
            // Agent `i`'s token from its logits `l`: a function of the frame alone, whichever
            // scratch checks it (the scratches share the frame's part, `MaskFrame`).
            let draw = |i: usize, l: &mut [f32], ms: &mut MaskScratch, sort_buf: &mut Vec<(f32, u16)>| {
                let r = keyed_u32x4(cfg.seed, scenario.scenario_id, i as u32, frame as u32, sample, STREAM_TOKEN);
                let tok = sample_token(l, &cfg.sampling, unit_f32(r[0]), sort_buf);
                if mask == FeasibilityMask::NONE {
                    return (tok, tok);
                }
                (tok, ms.filter(mask, map, world, i, tok, l, &cfg.sampling, unit_f32(r[1]), sort_buf))
            };
            let offs = logit_offsets(&self.classes);
            if parallel {
                let mut rows: Vec<&mut [f32]> = Vec::with_capacity(n);
                let mut rest = &mut logits[..offs[n]];
                for j in 0..n {
                    let (row, tail) = rest.split_at_mut(offs[j + 1] - offs[j]);
                    rows.push(row);
                    rest = tail;
                }
                let tokens = &mut self.choices;
                tokens.clear();
                tokens.resize(n, (0, 0));
                // Blocks of agents, a few per thread (their costs differ), each with its own
                // scratch sharing the frame.
                let len = n.div_ceil(4 * rayon::current_num_threads()).max(16);
                self.workers.resize_with(n.div_ceil(len), Default::default);
                for (w, _) in &mut self.workers {
                    w.frame = std::sync::Arc::clone(&self.ms.frame);
                }
                self.workers
                    .par_iter_mut()
                    .zip(rows.par_chunks_mut(len))
                    .zip(tokens.par_chunks_mut(len))
                    .zip(self.model_rows.par_chunks(len))
                    .for_each(|((((ms, sort_buf), rows), toks), is)| {
                        for ((l, t), &i) in rows.iter_mut().zip(toks).zip(is) {
                            *t = draw(i, l, ms, sort_buf);
                        }
                    });
                // The frame is the rollout's own again (the next frame rewrites it).
                for (w, _) in &mut self.workers {
                    w.frame = Default::default();
                }
                for (&i, &(_, tok)) in self.model_rows.iter().zip(tokens.iter()) {
                    self.next[i] = step(agents[i].class, &world[i].state, tok);
                }
            } else {
                self.choices.clear();
                for (j, &i) in self.model_rows.iter().enumerate() {
                    let c = draw(i, &mut logits[offs[j]..offs[j + 1]], &mut self.ms, &mut self.sort_buf);
                    self.choices.push(c);
                    self.next[i] = step(agents[i].class, &world[i].state, c.1);
                }
            }
        }
        push_frame_matching(agents, &self.next, map, scenario, frame, out, Some(self.ms.matched_mut()), parallel);
    }
}

/// Frames with at least this many model-driven agents spread their per-agent work (features,
/// the network's rows, tokens and masks, path matches) over rayon's threads when there are
/// several; below it a frame is one thread's (the scenarios of a batch already run in
/// parallel).
const PARALLEL_MIN_AGENTS: usize = 256;

/// Whether a frame of `n` model-driven agents runs on rayon's threads: at least
/// `min_agents` of them, and more than one thread to run them on.
fn in_parallel(min_agents: usize, n: usize) -> bool {
    n >= min_agents && rayon::current_num_threads() > 1
}

/// Rows per block of [`forward_in_parallel`]: a group's batch or so, near the kernel's
/// peak (`bench_model`'s layers alone).
const FORWARD_BLOCK_ROWS: usize = 256;

/// `net.forward` of `feats` in blocks of rows on rayon's threads, the blocks' logits joined
/// in order: the same bits as one pass, since a row's outputs do not depend on the batch it
/// is in ([`crate::matmul`]).
fn forward_in_parallel(
    net: &Network,
    feats: &[f32],
    classes: &[AgentClass],
    scratches: &mut Vec<Scratch>,
    logits: &mut Vec<f32>,
) {
    let blocks = classes.len().div_ceil(FORWARD_BLOCK_ROWS);
    scratches.resize_with(blocks, Scratch::default);
    let outs: Vec<Vec<f32>> = scratches
        .par_iter_mut()
        .zip(feats.par_chunks(FORWARD_BLOCK_ROWS * FEATURE_DIM))
        .zip(classes.par_chunks(FORWARD_BLOCK_ROWS))
        .map(|((scratch, f), c)| {
            let mut out = Vec::new();
            net.forward(f, c, scratch, &mut out);
            out
        })
        .collect();
    logits.clear();
    for o in outs {
        logits.extend_from_slice(&o);
    }
}

/// Rolls out `cfg.samples` samples of every scenario (rayon over scenarios × samples;
/// module docs), with `driver` moving the agents it claims.
pub fn rollout_scenarios_with(
    net: &Network,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
) -> Vec<ScenarioRollout> {
    rollout_scenarios_masked(net, map, scenarios, cfg, driver, FeasibilityMask::default())
}

/// [`rollout_scenarios_with`] with the given feasibility masks.
pub fn rollout_scenarios_masked(
    net: &Network,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
    mask: FeasibilityMask,
) -> Vec<ScenarioRollout> {
    let s = cfg.samples as usize;
    let jobs: Vec<(&Scenario, u32)> = (0..scenarios.len() * s).map(|k| (&scenarios[k / s], (k % s) as u32)).collect();
    // The agents a rollout starts with (its frame-0 records), on average over the scenarios.
    let starting: usize = scenarios.iter().map(|sc| sc.rows.iter().filter(|(f, _)| *f == 0).count()).sum();
    let agents = starting / scenarios.len().max(1);
    let group = rollout_group_size(jobs.len(), rayon::current_num_threads(), agents, l2_cache_bytes());
    let groups: Vec<Vec<Vec<(i32, TrajectoryRecord)>>> =
        jobs.par_chunks(group).map(|g| rollout_group(net, map, g, cfg, driver, mask)).collect();
    let mut it = groups.into_iter().flatten();
    scenarios
        .iter()
        .map(|sc| ScenarioRollout { scenario_id: sc.scenario_id, samples: it.by_ref().take(s).collect() })
        .collect()
}

/// At most this many rollouts share the network's passes ([`rollout_group`]).
const ROLLOUT_GROUP_MAX: usize = 6;

/// A group's bytes per agent in the core's L2 cache ([`rollout_group_size`]): its rows of the
/// network's activations (~5 KiB) and its share of the masks' and features' state. Measured
/// on `bench_model`'s 48-agent rollouts (BENCHMARKS.md, session 35): with a 512 KiB L2 (AMD
/// Zen 3) one rollout per group ran 12–20 % faster than six, two in between; with a 2 MiB L2
/// (Intel Xeon, session 27) six ran 4–8 % faster than one.
const GROUP_BYTES_PER_AGENT: usize = 6 << 10;

/// The L2 cache [`rollout_group_size`] assumes where the CPU does not say (bytes).
const L2_BYTES_UNKNOWN: usize = 1 << 20;

/// The L2 cache of the core this runs on (bytes; CPUID leaf 0x8000_0006, which AMD and Intel
/// CPUs both answer), or [`L2_BYTES_UNKNOWN`] where it cannot be read.
fn l2_cache_bytes() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        // The extended leaves exist up to the one leaf 0x8000_0000 names.
        if std::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0006 {
            let kib = (std::arch::x86_64::__cpuid(0x8000_0006).ecx >> 16) as usize;
            if kib > 0 {
                return kib << 10;
            }
        }
    }
    L2_BYTES_UNKNOWN
}

/// How many rollouts of `jobs` [`rollout_scenarios_masked`] steps together on each of
/// `threads` threads, for rollouts of `agents` agents on a core with `l2_bytes` of L2 cache:
/// as many as keep the group's working set in L2 ([`GROUP_BYTES_PER_AGENT`]; a larger batch
/// runs the network nearer its peak, but one that spills the cache slows everything else
/// more), at least one and at most [`ROLLOUT_GROUP_MAX`], while leaving four groups per
/// thread to balance the load. The records do not depend on it ([`rollout_group`]).
fn rollout_group_size(jobs: usize, threads: usize, agents: usize, l2_bytes: usize) -> usize {
    let fits = (l2_bytes / GROUP_BYTES_PER_AGENT / agents.max(1)).max(1);
    (jobs / (4 * threads.max(1))).min(fits).clamp(1, ROLLOUT_GROUP_MAX)
}

/// The rollouts `jobs` ((scenario, sample) each) stepped together, frame by frame, with
/// one network pass per frame for all their model-driven agents: the records of
/// [`rollout_one_masked`] of each, bit for bit, since a row's outputs never depend on the
/// batch it comes in ([`crate::matmul`]); the larger batch runs the matrix products
/// nearer the machine's peak.
fn rollout_group(
    net: &Network,
    map: &MapContext,
    jobs: &[(&Scenario, u32)],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
    mask: FeasibilityMask,
) -> Vec<Vec<(i32, TrajectoryRecord)>> {
    let mut lives: Vec<LiveRollout> = jobs
        .iter()
        .map(|&(sc, sample)| LiveRollout::start(std::borrow::Cow::Borrowed(sc), map, cfg.clone(), sample, mask))
        .collect();
    let mut outs: Vec<Vec<(i32, TrajectoryRecord)>> =
        lives.iter().map(|l| Vec::with_capacity(l.agents.len() * cfg.steps as usize)).collect();
    let (mut feats, mut classes, mut logits, mut scratch) = (Vec::new(), Vec::new(), Vec::new(), Scratch::default());
    let mut spans = Vec::with_capacity(lives.len());
    for _ in 1..=cfg.steps {
        feats.clear();
        classes.clear();
        spans.clear();
        let mut n_logits = 0;
        for live in &mut lives {
            live.begin_frame(map, driver, &mut feats);
            classes.extend_from_slice(&live.classes);
            let len: usize = live.classes.iter().map(|c| c.vocab()).sum();
            spans.push(n_logits..n_logits + len);
            n_logits += len;
        }
        if !classes.is_empty() {
            net.forward(&feats, &classes, &mut scratch, &mut logits);
        }
        for ((live, out), span) in lives.iter_mut().zip(&mut outs).zip(&spans) {
            live.end_frame(map, &mut logits[span.clone()], out);
        }
    }
    outs
}

/// Rolls out `cfg.samples` samples of every scenario with the model driving every agent.
pub fn rollout_scenarios(
    net: &Network,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
) -> Vec<ScenarioRollout> {
    rollout_scenarios_with(net, map, scenarios, cfg, None)
}

/// What a rollout directory holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutManifest {
    /// `swm-rollouts/1`.
    pub format: String,
    pub model: String,
    pub twin: String,
    pub config: RolloutConfig,
    /// Seed of the signal plans, when known.
    pub signal_seed: Option<u64>,
    pub scenarios: u64,
    /// `(file, rows)` per sample.
    pub files: Vec<(String, u64)>,
    /// The feasibility masks the rollouts ran with (both, in files written before the
    /// option existed).
    #[serde(default)]
    pub mask: FeasibilityMask,
}

/// Writes one Parquet file per sample and `manifest.json` into `dir` (module docs).
pub fn write_rollouts(
    dir: &Path,
    rollouts: &[ScenarioRollout],
    mut manifest: RolloutManifest,
) -> Result<Vec<PathBuf>, ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.to_path_buf(), source })?;
    let samples = rollouts.iter().map(|r| r.samples.len()).max().unwrap_or(0);
    let mut paths = Vec::new();
    manifest.files.clear();
    for s in 0..samples {
        let name = format!("sample-{s:05}.parquet");
        let path = dir.join(&name);
        let dse = |e| ModelError::Dataset(Box::new(e));
        let mut w = swm_dataset::TrajectoryWriter::create_scenarios(&path).map_err(dse)?;
        for r in rollouts {
            if let Some(rows) = r.samples.get(s) {
                w.write_scenario_rows(r.scenario_id, rows).map_err(dse)?;
            }
        }
        let rows = w.finish().map_err(dse)?;
        manifest.files.push((name, rows));
        paths.push(path);
    }
    manifest.format = "swm-rollouts/1".to_string();
    manifest.scenarios = rollouts.len() as u64;
    swm_dataset::manifest::write_json(&dir.join("manifest.json"), &manifest)
        .map_err(|e| ModelError::Dataset(Box::new(e)))?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-way road 400 m long (lanes 3.5 m apart, road 3.5 m either side of them) whose
    /// eastbound lane turns into a bend at its end.
    fn two_lanes_and_a_bend() -> MapContext {
        use crate::map::make_path;
        let east: Vec<[f64; 2]> = (0..=40).map(|i| [-200.0 + 10.0 * i as f64, 0.0]).collect();
        let west: Vec<[f64; 2]> = (0..=40).map(|i| [200.0 - 10.0 * i as f64, 3.5]).collect();
        let bend: Vec<[f64; 2]> =
            (0..=20).map(|i| i as f64 * 0.08).map(|a| [200.0 + 30.0 * a.sin(), 30.0 - 30.0 * a.cos()]).collect();
        MapContext::from_paths(
            vec![
                make_path(east, 13.9, Some(0), Some(390.0), vec![2]),
                make_path(west, 13.9, Some(1), None, vec![]),
                make_path(bend, 8.0, None, None, vec![]),
            ],
            3.5,
        )
    }

    fn k(x: f64, y: f64, h: f64, v: f64) -> Kinematics {
        Kinematics { point_enu: [x, y], heading_rad: h, speed_mps: v }
    }

    /// Agent `id`'s record at step `f` (0.1 s apart) at `p`: a car (4.5 × 1.8 m) or a
    /// pedestrian (0.5 × 0.5 m).
    fn record_at(id: u64, kind: AgentKind, f: u32, p: [f64; 2], heading_rad: f64, speed_mps: f64) -> TrajectoryRecord {
        let ped = kind == AgentKind::Pedestrian;
        TrajectoryRecord {
            agent_id: id,
            kind,
            length_m: if ped { 0.5 } else { 4.5 },
            width_m: if ped { 0.5 } else { 1.8 },
            step: f,
            time_s: 0.1 * f64::from(f),
            x_m: p[0],
            y_m: p[1],
            z_m: 0.0,
            heading_rad,
            speed_mps,
            accel_mps2: 0.0,
            lane: None,
            signal: None,
        }
    }

    #[test]
    fn mask_boxes_overlap_like_rectangles() {
        let a = MaskBox::new(&k(0.0, 0.0, 0.0, 0.0), 4.0, 2.0, 0.0);
        assert!(a.overlaps(&MaskBox::new(&k(3.9, 0.0, 0.0, 0.0), 4.0, 2.0, 0.0)));
        assert!(!a.overlaps(&MaskBox::new(&k(4.1, 0.0, 0.0, 0.0), 4.0, 2.0, 0.0)));
        assert!(!a.overlaps(&MaskBox::new(&k(0.0, 2.1, 0.0, 0.0), 4.0, 2.0, 0.0)));
        // Rotated 45°: its corner reaches 2.12 m along x from its centre.
        let r = std::f64::consts::FRAC_PI_4;
        assert!(a.overlaps(&MaskBox::new(&k(3.9, 0.0, r, 0.0), 3.0, 3.0, 0.0)));
        assert!(!a.overlaps(&MaskBox::new(&k(4.2, 0.0, r, 0.0), 3.0, 3.0, 0.0)));
        // A 0.1 m margin on both boxes closes a 0.15 m gap.
        assert!(MaskBox::new(&k(0.0, 0.0, 0.0, 0.0), 4.0, 2.0, 0.1).overlaps(&MaskBox::new(
            &k(4.15, 0.0, 0.0, 0.0),
            4.0,
            2.0,
            0.1
        )));
    }

    /// The full mask checks every token against the lowest key found so far and stops a
    /// check as soon as the token is known to be above it; the tokens it keeps must be those
    /// of checking every token in full. Random crowds of cars, buses and walkers on a
    /// two-way road with a bend, both masks on, speeds up to 40 m/s (beyond the off-road
    /// escape's 6 s horizon); several sampled tokens per agent. Also: the off-road test of a
    /// collision escape (`own_on_road`) is `brakes_on_road` from the state after the token,
    /// whichever fills the memo first.
    #[test]
    fn the_bounded_full_mask_keeps_the_tokens_of_the_exhaustive_walk() {
        let map = two_lanes_and_a_bend();
        let mask = FeasibilityMask::default();
        let mut ms = MaskScratch::default();
        let (mut agents_masked, mut pruned, mut kept_some, mut banned_some, mut cut) = (0, 0, 0, 0, 0);
        let sampling = SamplingConfig::default();
        for seed in 0..40u64 {
            let mut rng = swm_core::rng::CounterRng::new(seed, 9);
            let n = 6 + (seed % 5) as usize;
            let world: Vec<WorldAgent> = (0..n)
                .map(|id| {
                    let kind = match rng.next_u64() % 5 {
                        0 | 1 => AgentKind::Car,
                        2 => AgentKind::Bus,
                        _ => AgentKind::Pedestrian,
                    };
                    let (length_m, width_m) = match kind {
                        AgentKind::Car => (4.5, 1.8),
                        AgentKind::Bus => (11.0, 2.5),
                        _ => (0.5, 0.5),
                    };
                    let x = 150.0 + rng.range_f64(0.0, 60.0);
                    let y = rng.range_f64(-3.0, 8.0);
                    let speed_mps =
                        if kind == AgentKind::Pedestrian { rng.range_f64(0.0, 2.0) } else { rng.range_f64(0.0, 40.0) };
                    let heading_rad =
                        rng.range_f64(-0.6, 0.6) + if rng.next_u64().is_multiple_of(2) { 0.0 } else { 3.1 };
                    let state = Kinematics { point_enu: [x, y], heading_rad, speed_mps };
                    WorldAgent { agent_id: id as u64, kind, length_m, width_m, state, deck_m: 0.0, intent: id as u32 }
                })
                .collect();
            ms.new_frame(&world);
            for i in 0..n {
                ms.prepare(mask, &map, &world, i);
                if ms.idle() {
                    continue;
                }
                agents_masked += 1;
                let vocab = match AgentClass::of(world[i].kind) {
                    AgentClass::Vehicle => crate::tokens::VEHICLE_TOKENS,
                    AgentClass::Pedestrian => crate::tokens::PEDESTRIAN_TOKENS,
                };
                let keys: Vec<MaskKey> = (0..vocab as u16).map(|t| ms.check(&map, &world, i, t).key()).collect();
                // Peaked logits (as a trained network's), so that the walk stops early in
                // some cases; flat ones in others.
                let scale = [0.0, 2.0, 6.0][(seed % 3) as usize];
                let logits: Vec<f32> = (0..vocab).map(|_| (rng.range_f64(-1.0, 1.0) * scale) as f32).collect();
                // The walk (module docs), scoring every token in full: the probe, then the
                // others by probability (descending, ties by token).
                let probe = match AgentClass::of(world[i].kind) {
                    AgentClass::Vehicle => VEHICLE_YAW_RATE_RADPS.len() / 2,
                    AgentClass::Pedestrian => crate::tokens::PEDESTRIAN_DV_MPS.len() / 2,
                };
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let p: Vec<f32> = logits.iter().map(|l| crate::expf::exp_f32(l - max)).collect();
                let mut order: Vec<usize> = (0..vocab).filter(|&t| t != probe).collect();
                order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
                order.insert(0, probe);
                let rest = |j: usize| order[j + 1..].iter().rev().fold(0.0f32, |m, &t| m + p[t]);
                let (mut best, mut best_mass, mut walked) = (keys[probe], 0.0f32, vocab);
                for (j, &t) in order.iter().enumerate() {
                    best = best.min(keys[t]);
                    if keys[t] == MASK_KEY_BEST {
                        best_mass += p[t];
                    }
                    if best == MASK_KEY_BEST && best_mass >= MASK_STOP_FRACTION * (best_mass + rest(j)) {
                        walked = j + 1;
                        break;
                    }
                }
                cut += usize::from(walked < vocab);
                let mut want = vec![true; vocab];
                for &t in &order[..walked] {
                    want[t] = keys[t] > best;
                }
                kept_some += usize::from(want.iter().any(|b| !b));
                banned_some += usize::from(want.iter().any(|b| *b));
                for sampled in [0, vocab / 3, vocab / 2, vocab - 1].map(|t| t as u16) {
                    let c = ms.check(&map, &world, i, sampled);
                    let mut l = logits.clone();
                    ms.mask(&map, &world, i, (sampled, c), &mut l, &sampling);
                    let got: Vec<bool> = l.iter().map(|l| *l == f32::NEG_INFINITY).collect();
                    assert_eq!(got, want, "seed {seed} agent {i} sampled {sampled}");
                    pruned += ms.ok.iter().filter(|k| k.is_none()).count();
                }
                if AgentClass::of(world[i].kind) == AgentClass::Vehicle && ms.off_now == 0 {
                    for t in (0..vocab as u16).step_by(7) {
                        let first = step(AgentClass::Vehicle, &world[i].state, t);
                        let shape = MaskBox::new(&first, world[i].length_m, world[i].width_m, MASK_OFFROAD_MARGIN_M);
                        for &yaw in &VEHICLE_YAW_RATE_RADPS {
                            ms.continuation_level(AgentClass::Vehicle, t, &first, yaw, u16::MAX);
                            assert_eq!(
                                ms.own_on_road(&map, yaw),
                                brakes_on_road(&map, &shape, &first, yaw),
                                "seed {seed} agent {i} token {t} yaw {yaw}"
                            );
                        }
                    }
                }
            }
        }
        // The cases cover what they should: masks that keep some tokens and ban others,
        // checks cut short, and walks that stop before the last token.
        assert!(
            agents_masked > 100 && kept_some > 100 && banned_some > 50 && pruned > 1000 && cut > 30,
            "{agents_masked} {kept_some} {banned_some} {pruned} {cut}"
        );
    }

    #[test]
    fn rollout_groups_fit_the_l2_cache() {
        // The benchmark's 48-agent rollouts: one per group with a 512 KiB L2, six with 2 MiB.
        assert_eq!(rollout_group_size(128, 1, 48, 512 << 10), 1);
        assert_eq!(rollout_group_size(128, 1, 48, 2 << 20), 6);
        assert_eq!(rollout_group_size(128, 1, 48, 1 << 20), 3);
        // Small rollouts are batched up to the most a group holds.
        assert_eq!(rollout_group_size(128, 1, 8, 512 << 10), 6);
        // Four groups per thread come first; an empty scenario or no cache still gives one.
        assert_eq!(rollout_group_size(16, 2, 8, 2 << 20), 2);
        assert_eq!(rollout_group_size(3, 4, 0, 0), 1);
        assert!(l2_cache_bytes() >= 1 << 10);
    }

    #[test]
    fn escape_columns_try_every_yaw_rate_once() {
        let n = VEHICLE_YAW_RATE_RADPS.len();
        for first in 0..n {
            let mut seen: Vec<usize> = (0..n).map(|d| escape_column(first, d, n)).collect();
            assert_eq!(seen[0], first);
            // Nearest first.
            for d in 1..n {
                let (a, b) = (seen[d - 1].abs_diff(first), seen[d].abs_diff(first));
                assert!(b >= a, "first {first}: {seen:?}");
            }
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "first {first}");
        }
    }

    /// The features a rollout computes (with the path matches kept from the last frame's
    /// records and the frame's headings computed once) are those `agent_features`
    /// computes from scratch, at every frame: cars and walkers on two lanes, a bend and the
    /// ground beside them, 40 frames.
    #[test]
    fn rollout_features_are_the_features_computed_afresh() {
        use crate::features::agent_features;
        use crate::net::NetConfig;
        let map = two_lanes_and_a_bend();
        let history: Vec<Vec<TrajectoryRecord>> = (0..=HISTORY_STEPS as u32)
            .map(|f| {
                (0..10u64)
                    .map(|id| {
                        let kind = if id % 4 == 3 { AgentKind::Pedestrian } else { AgentKind::Car };
                        let (x0, y, heading_rad, speed_mps) = match id % 3 {
                            0 => (-60.0 + 25.0 * id as f64, 0.0, 0.0, 9.0),
                            1 => (120.0 - 20.0 * id as f64, 3.5, std::f64::consts::PI, 7.0),
                            _ => (150.0 + 4.0 * id as f64, -6.0 + 0.5 * id as f64, 0.3, 1.2),
                        };
                        let x = x0 + heading_rad.cos() * speed_mps * 0.1 * f64::from(f);
                        let y = y + heading_rad.sin() * speed_mps * 0.1 * f64::from(f);
                        record_at(id, kind, f, [x, y], heading_rad, speed_mps)
                    })
                    .collect()
            })
            .collect();
        let net = Network::init(NetConfig { nbr_hidden: 16, trunk_hidden: 32 }, 3);
        let mut live = LiveRollout::from_history(&history, &map, 7, SamplingConfig::default());
        let mut out = Vec::new();
        let (mut compared, mut matched) = (0, 0);
        for _ in 0..40 {
            let before = live.agents.clone();
            let time_s = live.scenario.current_time_s + DT_S * f64::from(live.frame);
            live.step(&net, &map, None, &mut out);
            let views: Vec<AgentView> = before.iter().map(RolloutAgent::view).collect();
            let mut row = vec![0.0f32; FEATURE_DIM];
            for (j, &i) in live.model_rows.iter().enumerate() {
                agent_features(&map, &views, i, time_s, &mut row);
                let got = &live.feats[j * FEATURE_DIM..(j + 1) * FEATURE_DIM];
                let same = got.iter().zip(&row).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "frame {} agent {i}: {got:?} != {row:?}", live.frame);
                compared += 1;
                matched += usize::from(row[25] == 1.0);
            }
        }
        // Vehicles on the lanes take the kept matches.
        assert!(compared == 400 && matched > 100, "{compared} rows, {matched} matched");
    }

    /// A frame of many agents finds its neighbours and its collision candidates by cell
    /// (`crate::cells`) and computes its features, network rows, tokens, masks and path
    /// matches on rayon's threads; the records are those of scanning every agent on one
    /// thread, bit for bit, whatever the thread count: 300 cars and walkers on the two-lane
    /// road and its sidewalks, 30 frames with the masks.
    #[test]
    fn crowds_searched_by_cell_roll_out_as_scanned() {
        use crate::net::NetConfig;
        let map = two_lanes_and_a_bend();
        let mut rng = swm_core::rng::CounterRng::new(29, 3);
        let agents: Vec<(AgentKind, [f64; 2], f64, f64)> = (0..300)
            .map(|id| {
                if id < 120 {
                    let (lane, k) = (id % 2, (id / 2) as f64);
                    let x = -195.0 + 6.5 * k + rng.range_f64(0.0, 1.0);
                    let heading = if lane == 0 { 0.0 } else { std::f64::consts::PI };
                    (AgentKind::Car, [x, 3.5 * lane as f64], heading, rng.range_f64(4.0, 12.0))
                } else {
                    let y = if id % 2 == 0 { rng.range_f64(-8.0, -6.0) } else { rng.range_f64(9.5, 11.5) };
                    let heading = rng.range_f64(-std::f64::consts::PI, std::f64::consts::PI);
                    (AgentKind::Pedestrian, [rng.range_f64(-200.0, 200.0), y], heading, rng.range_f64(0.5, 1.6))
                }
            })
            .collect();
        let history: Vec<Vec<TrajectoryRecord>> = (0..=HISTORY_STEPS as u32)
            .map(|f| {
                agents
                    .iter()
                    .enumerate()
                    .map(|(id, &(kind, p, heading_rad, speed_mps))| {
                        let back = 0.1 * f64::from(HISTORY_STEPS as u32 - f) * speed_mps;
                        let at = [p[0] - heading_rad.cos() * back, p[1] - heading_rad.sin() * back];
                        record_at(id as u64, kind, f, at, heading_rad, speed_mps)
                    })
                    .collect()
            })
            .collect();
        assert!(agents.len() >= CELL_INDEX_MIN_AGENTS && agents.len() >= PARALLEL_MIN_AGENTS);
        let net = Network::init(NetConfig { nbr_hidden: 16, trunk_hidden: 32 }, 5);
        // (records, frames whose searches went by cell); `reference`: scans on one thread.
        let run = |reference: bool, mask: FeasibilityMask, threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            pool.install(|| {
                let mut live = LiveRollout::from_history(&history, &map, 3, SamplingConfig::default());
                live.mask = mask;
                live.feature_scratch.scan_only = reference;
                std::sync::Arc::get_mut(&mut live.ms.frame).expect("not shared").scan_only = reference;
                if reference {
                    live.parallel_min_agents = usize::MAX;
                }
                let mut out = Vec::new();
                let mut searched = 0;
                for _ in 0..30 {
                    live.step(&net, &map, None, &mut out);
                    searched += usize::from(live.feature_scratch.indexed && live.ms.frame.cells.is_some());
                }
                (out, searched)
            })
        };
        let bits = |out: &[(i32, TrajectoryRecord)]| -> Vec<[u64; 5]> {
            out.iter()
                .map(|(f, r)| [*f as u64, r.agent_id, r.x_m.to_bits(), r.y_m.to_bits(), r.heading_rad.to_bits()])
                .collect()
        };
        let (scanned, none) = run(true, FeasibilityMask::default(), 1);
        assert_eq!(none, 0, "the reference scans");
        assert_eq!(scanned.len(), 300 * 30);
        for threads in [1, 3] {
            let (by_cell, searched) = run(false, FeasibilityMask::default(), threads);
            assert_eq!(searched, 30, "the cells were used in every frame");
            assert!(bits(&by_cell) == bits(&scanned), "{threads} threads: records differ from the scan's");
        }
        // The masks acted on this crowd (so the candidates searched by cell mattered).
        let (unmasked, _) = run(false, FeasibilityMask::NONE, 3);
        assert!(bits(&unmasked) != bits(&scanned), "the masks changed nothing");
        assert!(bits(&unmasked) == bits(&run(true, FeasibilityMask::NONE, 1).0), "unmasked: records differ");
    }

    /// Every state the collision mask compares lies within the reaches that narrow the
    /// candidates: the escapes after every token (every yaw rate held), the route
    /// continuations, and the candidates' braking, for vehicles and walkers at random
    /// speeds and poses on the two-lane road and its bend.
    /// A car coming down a ramp checks a car standing further down it, whose deck is less
    /// than a level below its own (Jamsil, seed 4: they met when the metrics' 3 m separation
    /// kept it out of the mask until too late), but not a car on the road a level below.
    #[test]
    fn mask_candidates_include_a_car_down_the_ramp() {
        let map = two_lanes_and_a_bend();
        let car = |id: u64, x: f64, speed_mps: f64, deck_m: f64| WorldAgent {
            agent_id: id,
            kind: AgentKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            state: Kinematics { point_enu: [x, 0.0], heading_rad: 0.0, speed_mps },
            deck_m,
            intent: 0,
        };
        // The fastest token straight on.
        let n = VEHICLE_YAW_RATE_RADPS.len();
        let fastest = ((crate::tokens::VEHICLE_ACCEL_MPS2.len() - 1) * n + n / 2) as u16;
        for (below_m, candidate) in [(0.0, true), (2.5, true), (4.2, true), (5.4, true), (6.0, false), (12.0, false)] {
            let world = [car(0, 0.0, 8.0, 6.0), car(1, 10.0, 0.0, 6.0 - below_m)];
            let mut ms = MaskScratch::default();
            ms.new_frame(&world);
            ms.prepare(FeasibilityMask::default(), &map, &world, 0);
            assert_eq!(ms.cand.iter().any(|c| c.j == 1), candidate, "a car {below_m} m below");
            let hit = ms.check(&map, &world, 0, fastest).coll >= COLL_HIT;
            assert_eq!(hit, candidate, "the fastest token with a car standing 10 m ahead, {below_m} m below");
        }
    }

    /// A vehicle's ghost grown by its spread (module docs, "Moves at once") holds, step by
    /// step, the same vehicle after any token of the fastest row whose yaw rate the spread
    /// allows, braking straight on after it: every corner of the one box inside the other.
    #[test]
    fn ghost_spread_holds_the_fastest_tokens() {
        let mut rng = swm_core::rng::CounterRng::new(46, 1);
        let mut trig = SinCos::default();
        let (mut ghost, mut alt) = (Vec::new(), Vec::new());
        let n = VEHICLE_YAW_RATE_RADPS.len();
        let mut grew_m: f64 = 0.0;
        for case in 0..300 {
            let speed_mps = if case % 7 == 0 { 0.0 } else { rng.range_f64(0.0, 30.0) };
            let now = Kinematics { point_enu: [0.0, 0.0], heading_rad: rng.range_f64(-3.1, 3.1), speed_mps };
            let shape = MaskBox::sized(4.5, 1.8, MASK_BOX_MARGIN_M);
            braking_states(AgentClass::Vehicle, &now, 0.0, MASK_MAX_BRAKE_STEPS, &mut ghost, &mut trig);
            let v1 = speed_mps + VEHICLE_ACCEL_MAX_MPS2 * DT_S;
            for (col, &yaw) in VEHICLE_YAW_RATE_RADPS.iter().enumerate() {
                if yaw.abs() * v1 > MASK_LATERAL_MPS2 + 1e-9 {
                    continue;
                }
                let t = ((crate::tokens::VEHICLE_ACCEL_MPS2.len() - 1) * n + col) as u16;
                let first = crate::tokens::step_by(AgentClass::Vehicle, &now, t, f64::sin_cos);
                braking_states(AgentClass::Vehicle, &first, 0.0, MASK_MAX_BRAKE_STEPS - 1, &mut alt, &mut trig);
                for i in 1..=MASK_MAX_BRAKE_STEPS {
                    let (g, a) = (&ghost[i], &alt[i - 1]);
                    let spread = ghost_spread(speed_mps, shape.hl, shape.hw, i);
                    let grown = Brakes {
                        poses: [[g.point_enu[0], g.point_enu[1], g.heading_rad.cos(), g.heading_rad.sin()];
                            MASK_MAX_BRAKE_STEPS + 1],
                        spread: [spread; MASK_MAX_BRAKE_STEPS + 1],
                        bounds: Bounds::of(std::iter::empty()),
                        spread_max_m: 0.0,
                    }
                    .at(i, &shape);
                    grew_m = grew_m.max(spread.hw_m);
                    let (f, l) = (grown.f, [-grown.f[1], grown.f[0]]);
                    for c in MaskBox::new(a, 4.5, 1.8, MASK_BOX_MARGIN_M).corners() {
                        let d = [c[0] - grown.c[0], c[1] - grown.c[1]];
                        let (along, across) = (d[0] * f[0] + d[1] * f[1], d[0] * l[0] + d[1] * l[1]);
                        assert!(
                            along.abs() <= grown.hl + 1e-9 && across.abs() <= grown.hw + 1e-9,
                            "case {case}, {speed_mps} m/s, yaw {yaw}, step {i}: a corner at ({along}, {across}) \
                             outside ±({}, {})",
                            grown.hl,
                            grown.hw
                        );
                    }
                }
            }
            // The largest spread bounds every step's.
            let max_m = ghost_spread_max_m(AgentClass::Vehicle, speed_mps, &shape);
            for i in 0..=MASK_MAX_BRAKE_STEPS {
                assert!(ghost_spread(speed_mps, shape.hl, shape.hw, i).extra_m() <= max_m);
            }
        }
        assert!(grew_m > 0.1, "the spreads tested grow the boxes sideways ({grew_m} m)");
    }

    #[test]
    fn mask_states_stay_within_the_candidates_reaches() {
        let map = two_lanes_and_a_bend();
        let mut rng = swm_core::rng::CounterRng::new(31, 2);
        let mut trig = SinCos::default();
        let mut states = Vec::new();
        let (mut routes, mut ghosts_on_routes, mut closest) = (0, 0, f64::INFINITY);
        let same_states =
            |a: &[Kinematics], b: &[Kinematics]| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_state(a, b));
        let far = |now: &Kinematics, s: &[Kinematics]| {
            s.iter()
                .map(|k| (k.point_enu[0] - now.point_enu[0]).hypot(k.point_enu[1] - now.point_enu[1]))
                .fold(0.0, f64::max)
        };
        for case in 0..400 {
            let class = if case % 3 == 0 { AgentClass::Pedestrian } else { AgentClass::Vehicle };
            let speed_mps = match (class, case % 5) {
                (_, 0) => 0.0,
                (AgentClass::Pedestrian, _) => rng.range_f64(0.0, 3.5),
                (AgentClass::Vehicle, _) => rng.range_f64(0.0, 36.0),
            };
            // Along the east lane or round the bend, up to 2 m and 0.4 rad off it.
            let (p, h) = if case % 2 == 0 {
                ([rng.range_f64(-190.0, 190.0), rng.range_f64(-2.0, 2.0)], 0.0)
            } else {
                let a = rng.range_f64(0.0, 1.5);
                let r = 30.0 + rng.range_f64(-2.0, 2.0);
                ([200.0 + r * a.sin(), 30.0 - r * a.cos()], a)
            };
            let now = Kinematics { point_enu: p, heading_rad: h + rng.range_f64(-0.4, 0.4), speed_mps };
            let own = own_reach_m(class, speed_mps);
            let theirs = their_reach_m(class, speed_mps);
            let kind = if class == AgentClass::Vehicle { AgentKind::Car } else { AgentKind::Pedestrian };
            let (length_m, width_m) = if class == AgentClass::Vehicle { (4.5, 1.8) } else { (0.5, 0.5) };
            let w = WorldAgent { agent_id: 0, kind, length_m, width_m, state: now, deck_m: 0.0, intent: case };
            their_braking_states(&map, &w, None, MASK_MAX_BRAKE_STEPS, &mut states, &mut trig);
            assert!(far(&now, &states) <= theirs, "{class:?} at {speed_mps} m/s: braking beyond {theirs} m");
            let mut straight = Vec::new();
            braking_states(class, &now, 0.0, MASK_MAX_BRAKE_STEPS, &mut straight, &mut trig);
            ghosts_on_routes +=
                usize::from(class == AgentClass::Vehicle && speed_mps > 0.0 && !same_states(&states, &straight));
            let yaws: &[f64] = if class == AgentClass::Vehicle { &VEHICLE_YAW_RATE_RADPS } else { &[0.0] };
            for t in 0..class.vocab() as u16 {
                let first = crate::tokens::step_by(class, &now, t, f64::sin_cos);
                for &yaw in yaws {
                    braking_states(class, &first, yaw, MASK_MAX_BRAKE_STEPS, &mut states, &mut trig);
                    let d = far(&now, &states);
                    closest = closest.min(own - d);
                    assert!(d <= own, "{class:?} at {speed_mps} m/s, token {t}, yaw {yaw}: {d} m beyond {own} m");
                }
            }
            // The route continuations of a vehicle on a path it follows (as `prepare` finds it).
            if class == AgentClass::Vehicle
                && let Some(m) = map.match_path(now.point_enu, now.heading_rad, MASK_ROUTE_MATCH_M)
                && m.heading_error_rad.abs() < MASK_ROUTE_HEADING_RAD
            {
                routes += 1;
                let world = [
                    WorldAgent {
                        agent_id: 0,
                        kind: AgentKind::Car,
                        length_m: 4.5,
                        width_m: 1.8,
                        state: now,
                        deck_m: 0.0,
                        intent: case,
                    },
                    // A standing car just ahead, so that the route is made.
                    WorldAgent {
                        agent_id: 1,
                        kind: AgentKind::Car,
                        length_m: 4.5,
                        width_m: 1.8,
                        state: Kinematics { point_enu: [p[0] + 6.0 * h.cos(), p[1] + 6.0 * h.sin()], ..now },
                        deck_m: 0.0,
                        intent: 0,
                    },
                ];
                let mut ms = MaskScratch::default();
                ms.new_frame(&world);
                ms.prepare(FeasibilityMask::default(), &map, &world, 0);
                assert!(!ms.route.is_empty(), "case {case}: a vehicle on its lane has a route");
                let reach = route_reach_m(&map, &ms.route, &m, &now);
                for t in 0..crate::tokens::VEHICLE_TOKENS as u16 {
                    ms.route_levels = Default::default();
                    let first = crate::tokens::step_by(class, &now, t, f64::sin_cos);
                    ms.route_level(&map, t, &now, &first);
                    let d = far(&now, &ms.own);
                    assert!(d <= reach, "case {case}, token {t}: the route continuation {d} m beyond {reach} m");
                }
            }
        }
        assert!(routes > 100, "only {routes} vehicles followed a route");
        assert!(ghosts_on_routes > 100, "only {ghosts_on_routes} candidates braked along a route");
        // The bounds are tight to within a few centimetres somewhere.
        assert!(closest < 0.05, "the own reach is {closest} m above every escape's");
    }

    /// Another vehicle is assumed to brake straight on in its lane's frame (its route): a
    /// car at 15 m/s on the east lane 10 m before the bend stays on the bend's arc (30 m
    /// round (200, 30)) as it brakes, heading along it, where braking straight on leaves it
    /// by metres; one angled across the straight lane goes on across it as braking straight
    /// on does; a car in the bend (a connection), a car off every path, a standing one and
    /// a walker brake straight.
    #[test]
    fn other_vehicles_brake_along_their_lane_round_a_bend() {
        let map = two_lanes_and_a_bend();
        let car = |state: Kinematics| WorldAgent {
            agent_id: 0,
            kind: AgentKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            state,
            deck_m: 0.0,
            intent: 0,
        };
        let off_arc = |s: &Kinematics| ((s.point_enu[0] - 200.0).hypot(s.point_enu[1] - 30.0) - 30.0).abs();
        let (mut states, mut straight, mut trig) = (Vec::new(), Vec::new(), SinCos::default());
        let now = k(190.0, 0.0, 0.0, 15.0);
        their_braking_states(&map, &car(now), None, MASK_MAX_BRAKE_STEPS, &mut states, &mut trig);
        braking_states(AgentClass::Vehicle, &now, 0.0, MASK_MAX_BRAKE_STEPS, &mut straight, &mut trig);
        let (last, last_straight) = (states.last().unwrap(), straight.last().unwrap());
        assert_eq!(last.speed_mps, 0.0);
        // v²/2a = 18.75 m along the lane.
        let gone = (last.point_enu[0] - now.point_enu[0]).hypot(last.point_enu[1] - now.point_enu[1]);
        assert!(gone > 17.0 && gone <= 18.75 + 1e-9, "{gone} m");
        assert!(off_arc(last) < 0.05, "the ghost ends {} m off the bend", off_arc(last));
        let along = (last.point_enu[0] - 200.0).atan2(30.0 - last.point_enu[1]);
        assert!((last.heading_rad - along).abs() < 0.05, "{last:?} heads across the lane (arc at {along})");
        assert!(off_arc(last_straight) > 1.0, "braking straight on stays on the bend: {last_straight:?}");
        // Heading 0.2 rad off the straight east lane (changing lanes): on across it, as
        // braking straight on goes (to within the steps' discretisation).
        let now = k(-50.0, 0.5, 0.2, 15.0);
        their_braking_states(&map, &car(now), None, MASK_MAX_BRAKE_STEPS, &mut states, &mut trig);
        braking_states(AgentClass::Vehicle, &now, 0.0, MASK_MAX_BRAKE_STEPS, &mut straight, &mut trig);
        assert!(states.len() == straight.len() && states[1] != straight[1], "the ghost follows the lane");
        for (a, b) in states.iter().zip(&straight) {
            let d = (a.point_enu[0] - b.point_enu[0]).hypot(a.point_enu[1] - b.point_enu[1]);
            assert!(d < 0.05 && (a.heading_rad - b.heading_rad).abs() < 1e-9, "{a:?} vs {b:?}");
        }
        // In the bend (a connection, not a lane: where paths cross, the route is one guess of
        // several), off every path (10 m beside the lanes), standing, or walking: straight on.
        let (q, _, h) = map.paths[2].at_from(9.0, &mut crate::map::PathCursor::default());
        let in_bend = car(k(q[0], q[1], h, 15.0));
        their_braking_states(&map, &in_bend, None, MASK_MAX_BRAKE_STEPS, &mut states, &mut trig);
        braking_states(AgentClass::Vehicle, &in_bend.state, 0.0, MASK_MAX_BRAKE_STEPS, &mut straight, &mut trig);
        assert!(states.iter().zip(&straight).all(|(a, b)| same_state(a, b)), "in the bend: {states:?}");
        for w in [
            car(k(0.0, 12.0, 0.0, 15.0)),
            car(k(190.0, 0.0, 0.0, 0.0)),
            WorldAgent { kind: AgentKind::Pedestrian, length_m: 0.5, width_m: 0.5, ..car(k(190.0, 0.0, 0.0, 1.5)) },
        ] {
            their_braking_states(&map, &w, None, MASK_MAX_BRAKE_STEPS, &mut states, &mut trig);
            assert!(
                states.iter().all(|s| s.point_enu[1] == w.state.point_enu[1] && s.heading_rad == 0.0),
                "{w:?}: {states:?}"
            );
        }
    }

    /// The candidates narrowed by their reaches give every token the key the wider search
    /// gives it: random crowds of cars, buses and walkers on the two-lane road.
    #[test]
    fn narrowed_candidates_give_every_token_its_key() {
        let map = two_lanes_and_a_bend();
        let mask = FeasibilityMask::default();
        let (mut narrowed, mut compared) = (0, 0);
        for seed in 0..30u64 {
            let mut rng = swm_core::rng::CounterRng::new(seed, 12);
            let world: Vec<WorldAgent> = (0..14)
                .map(|id| {
                    let kind = [AgentKind::Car, AgentKind::Car, AgentKind::Bus, AgentKind::Pedestrian][id % 4];
                    let (length_m, width_m) = match kind {
                        AgentKind::Car => (4.5, 1.8),
                        AgentKind::Bus => (11.0, 2.5),
                        _ => (0.5, 0.5),
                    };
                    let speed_mps = rng.range_f64(0.0, if kind == AgentKind::Pedestrian { 2.0 } else { 25.0 });
                    let heading_rad = if id % 3 == 0 { std::f64::consts::PI } else { 0.0 } + rng.range_f64(-0.3, 0.3);
                    let point_enu = [rng.range_f64(-120.0, 120.0), rng.range_f64(-3.0, 7.0)];
                    let state = Kinematics { point_enu, heading_rad, speed_mps };
                    WorldAgent { agent_id: id as u64, kind, length_m, width_m, state, deck_m: 0.0, intent: id as u32 }
                })
                .collect();
            let (mut wide, mut narrow) = (MaskScratch::default(), MaskScratch::default());
            std::sync::Arc::get_mut(&mut wide.frame).expect("not shared").scan_only = true;
            wide.new_frame(&world);
            narrow.new_frame(&world);
            for i in 0..world.len() {
                wide.prepare(mask, &map, &world, i);
                narrow.prepare(mask, &map, &world, i);
                assert!(narrow.cand.iter().all(|c| wide.cand.iter().any(|w| w.j == c.j)));
                narrowed += wide.cand.len() - narrow.cand.len();
                for t in 0..AgentClass::of(world[i].kind).vocab() as u16 {
                    let (a, b) = (wide.check(&map, &world, i, t).key(), narrow.check(&map, &world, i, t).key());
                    assert_eq!(a, b, "seed {seed}, agent {i}, token {t}");
                    compared += usize::from(!wide.cand.is_empty());
                }
            }
        }
        assert!(narrowed > 100 && compared > 1000, "{narrowed} candidates narrowed away, {compared} tokens compared");
    }

    /// The states of braking, stopped early once a step changes no bit, are those of every
    /// step computed: vehicles and walkers at random speeds (stopped ones too), yaw rates
    /// and headings (±0 among them).
    #[test]
    fn braking_states_copy_the_stopped_state_as_stepping_would() {
        let mut rng = swm_core::rng::CounterRng::new(23, 4);
        let (mut out, mut trig) = (Vec::new(), SinCos::default());
        for case in 0..2000 {
            let class = if case % 3 == 0 { AgentClass::Pedestrian } else { AgentClass::Vehicle };
            let heading = [0.0, -0.0, std::f64::consts::PI, rng.range_f64(-3.2, 3.2)][case % 4];
            let speed = [0.0, rng.range_f64(0.0, 0.7), rng.range_f64(0.0, 20.0)][case % 3];
            let start = k(rng.range_f64(-100.0, 100.0), [0.0, -0.0, 5.0][case % 3], heading, speed);
            let yaw = VEHICLE_YAW_RATE_RADPS[case % VEHICLE_YAW_RATE_RADPS.len()];
            let steps = case % (MASK_MAX_BRAKE_STEPS + 1);
            braking_states(class, &start, yaw, steps, &mut out, &mut trig);
            let mut want = vec![start];
            for _ in 0..steps {
                let s = *want.last().expect("a state");
                want.push(match class {
                    AgentClass::Vehicle => vehicle_step_by(&s, -MASK_BRAKE_MPS2, yaw, f64::sin_cos),
                    AgentClass::Pedestrian => {
                        pedestrian_step_by(&s, -s.speed_mps.min(MASK_BRAKE_MPS2 * DT_S), 0.0, f64::sin_cos)
                    }
                });
            }
            assert_eq!(out.len(), want.len());
            for (got, want) in out.iter().zip(&want) {
                assert!(same_state(got, want), "case {case}: {got:?} != {want:?}");
            }
        }
    }

    #[test]
    fn braking_stops_vehicles_and_pedestrians() {
        let mut out = Vec::new();
        braking_states(AgentClass::Vehicle, &k(0.0, 0.0, 0.0, 12.0), 0.0, 30, &mut out, &mut SinCos::with_slots(1));
        assert_eq!(out.len(), 31);
        let last = out.last().unwrap();
        assert_eq!(last.speed_mps, 0.0);
        // v² / 2a = 12 m, plus the discretisation (0.6 m per step of mean speed error).
        assert!(last.point_enu[0] > 11.0 && last.point_enu[0] < 13.5, "{last:?}");
        // A walker slows by 0.6 m/s a step (the vocabulary's hardest), moving at its new speed.
        braking_states(AgentClass::Pedestrian, &k(1.0, 2.0, 0.0, 1.5), 0.0, 4, &mut out, &mut SinCos::with_slots(1));
        let xs: Vec<f64> = out.iter().map(|s| s.point_enu[0]).collect();
        let speeds: Vec<f64> = out.iter().map(|s| s.speed_mps).collect();
        for (got, want) in xs.iter().zip([1.0, 1.09, 1.12, 1.12, 1.12]) {
            assert!((got - want).abs() < 1e-9, "{xs:?}");
        }
        for (got, want) in speeds.iter().zip([1.5, 0.9, 0.3, 0.0, 0.0]) {
            assert!((got - want).abs() < 1e-9, "{speeds:?}");
        }
        // Another walker is assumed to finish its step first (both move at once).
        let walker = WorldAgent {
            agent_id: 0,
            kind: AgentKind::Pedestrian,
            length_m: 0.5,
            width_m: 0.5,
            state: k(1.0, 2.0, 0.0, 1.5),
            deck_m: 0.0,
            intent: 0,
        };
        their_braking_states(&two_lanes_and_a_bend(), &walker, None, 3, &mut out, &mut SinCos::with_slots(1));
        assert_eq!(out.len(), 4);
        assert!((out[1].point_enu[0] - 1.15).abs() < 1e-9 && (out[2].point_enu[0] - 1.24).abs() < 1e-9, "{out:?}");
    }
}
