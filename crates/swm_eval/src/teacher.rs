//! Held-out teacher scenarios and the "teacher with another seed" baseline.
//!
//! [`teacher_eval_set`] runs the teacher simulator on a twin, cuts scenarios out of its
//! log, and, for each scenario, samples `S` other futures from **the same state** with the
//! teacher itself under other seeds ([`swm_sim::Simulation::fork`]: every vehicle not yet
//! committed to its next junction movement draws a new destination, spawns and later
//! random choices come from the new stream). It is the reference a learned model is
//! measured against: as realistic as the teacher, but not the logged future.
//!
//! # Procedure (deterministic from [`TeacherEvalOptions`])
//! 1. Run the teacher for `warmup_s + window_s + future_s` seconds, recording every step.
//! 2. Cut scenarios ([`swm_dataset::cut_scenarios`], centres: vehicles); keep those whose
//!    current time is at or after `warmup_s` (the district has filled) and, if there are
//!    more than `max_scenarios`, an evenly spaced selection of them (in cut order);
//!    renumber them `0..`.
//! 3. Run the teacher again (the same run: bit-identical) and, at every kept current step,
//!    fork it `samples` times with seeds from [`fork_seed`]; step each fork for the
//!    scenarios' future and read the scenarios' agents (by run id) from it. An agent that
//!    leaves the district in a fork has no rows from then on. Forks of one current step
//!    run in parallel (rayon); results are in (scenario, sample) order.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use swm_dataset::{Scenario, ScenarioOptions, cut_scenarios};
use swm_sim::{SimConfig, Simulation, TrajectoryRecord};
use swm_twin::Twin;

use crate::{EvalError, ScenarioRollout};

/// How the held-out teacher scenarios are made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherEvalOptions {
    /// The teacher run (its seed decides the log; `duration_s` is ignored).
    pub sim: SimConfig,
    /// Seconds simulated before the first scenario's current time.
    pub warmup_s: f64,
    /// Seconds over which current times are taken.
    pub window_s: f64,
    pub scenarios: ScenarioOptions,
    /// At most this many scenarios (0: all).
    pub max_scenarios: usize,
    /// Teacher futures per scenario.
    pub samples: u32,
}

impl Default for TeacherEvalOptions {
    fn default() -> Self {
        TeacherEvalOptions {
            sim: SimConfig { seed: 1, vehicles: 300, pedestrians: 100, ..Default::default() },
            warmup_s: 60.0,
            window_s: 60.0,
            scenarios: ScenarioOptions { stride_s: 5.0, ..Default::default() },
            max_scenarios: 200,
            samples: 8,
        }
    }
}

/// Scenarios and the teacher's other-seed futures of each.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherEvalSet {
    pub scenarios: Vec<Scenario>,
    /// One per scenario, in the same order, `samples` futures each.
    pub teacher_other_seed: Vec<ScenarioRollout>,
}

/// The seed of fork `sample` at step `step` of a run with seed `seed` (a SplitMix64 mix;
/// never the run's own seed in practice).
pub fn fork_seed(seed: u64, step: u32, sample: u32) -> u64 {
    let mut z = seed ^ ((step as u64) << 32 | sample as u64) ^ 0x7EAC_4E20_0000_0000;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn frames(s: f64) -> u32 {
    (s * swm_dataset::scenario::SCENARIO_HZ).round().max(0.0) as u32
}

/// Runs the teacher and builds the evaluation set (module docs).
pub fn teacher_eval_set(twin: Arc<Twin>, opts: &TeacherEvalOptions) -> Result<TeacherEvalSet, EvalError> {
    for (name, v) in [("warmup_s", opts.warmup_s), ("window_s", opts.window_s)] {
        if !v.is_finite() || v < 0.0 {
            return Err(EvalError::Config(format!("{name} must be a finite number >= 0, got {v}")));
        }
    }
    if opts.samples == 0 {
        return Err(EvalError::Config("samples must be at least 1".into()));
    }
    let future = frames(opts.scenarios.future_s);
    let total_steps = frames(opts.warmup_s + opts.window_s) + future;
    let sim_err = |e: swm_sim::SimError| EvalError::Sim(e.to_string());
    // 1. The log.
    let mut sim = Simulation::new(twin.clone(), opts.sim.clone()).map_err(sim_err)?;
    let mut log: Vec<TrajectoryRecord> = Vec::new();
    sim.run(total_steps, &mut |_, recs| log.extend_from_slice(recs));
    // 2. Scenarios.
    let cut = cut_scenarios(&log, &opts.scenarios).map_err(|e| EvalError::Config(e.to_string()))?;
    drop(log);
    let warm_step = frames(opts.warmup_s);
    let mut kept: Vec<Scenario> = cut.into_iter().filter(|s| s.current_step >= warm_step).collect();
    if opts.max_scenarios > 0 && kept.len() > opts.max_scenarios {
        let n = kept.len();
        let pick: Vec<usize> = (0..opts.max_scenarios).map(|i| i * n / opts.max_scenarios).collect();
        let mut it = pick.into_iter().peekable();
        kept = kept
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| {
                if it.peek() == Some(&i) {
                    it.next();
                    Some(s)
                } else {
                    None
                }
            })
            .collect();
    }
    for (i, s) in kept.iter_mut().enumerate() {
        s.scenario_id = i as u64;
    }
    if kept.is_empty() {
        return Err(EvalError::NoScenarios);
    }
    // 3. Forks at every kept current step.
    let mut by_step: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, s) in kept.iter().enumerate() {
        by_step.entry(s.current_step).or_default().push(i);
    }
    let mut rollouts: Vec<Option<ScenarioRollout>> = vec![None; kept.len()];
    let mut sim = Simulation::new(twin, opts.sim.clone()).map_err(sim_err)?;
    for (&step, idxs) in &by_step {
        while sim.step_index() < step {
            sim.step();
        }
        let futures: Vec<Vec<Vec<TrajectoryRecord>>> = (0..opts.samples)
            .into_par_iter()
            .map(|k| {
                let mut f = sim.fork(fork_seed(opts.sim.seed, step, k));
                (0..future)
                    .map(|_| {
                        f.step();
                        f.records()
                    })
                    .collect()
            })
            .collect();
        for &i in idxs {
            let scn = &kept[i];
            let new_id: BTreeMap<u64, u64> =
                scn.agents.iter().enumerate().map(|(new, &old)| (old, new as u64)).collect();
            let samples = futures
                .iter()
                .map(|fut| {
                    let mut rows = Vec::new();
                    for (j, recs) in fut.iter().enumerate() {
                        let mut at: Vec<(i32, TrajectoryRecord)> = recs
                            .iter()
                            .filter_map(|r| {
                                new_id.get(&r.agent_id).map(|&id| {
                                    let mut r = r.clone();
                                    r.agent_id = id;
                                    (j as i32 + 1, r)
                                })
                            })
                            .collect();
                        at.sort_by_key(|(_, r)| r.agent_id);
                        rows.extend(at);
                    }
                    rows
                })
                .collect();
            rollouts[i] = Some(ScenarioRollout { scenario_id: scn.scenario_id, samples });
        }
    }
    let teacher_other_seed = rollouts.into_iter().map(|r| r.expect("every kept scenario has a current step")).collect();
    tracing::info!(scenarios = kept.len(), samples = opts.samples, "teacher evaluation set ready");
    Ok(TeacherEvalSet { scenarios: kept, teacher_other_seed })
}
