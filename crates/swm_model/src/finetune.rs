//! Rollout fine-tuning: DAgger with the feasibility masks as the expert.
//!
//! Behaviour cloning trains the network on the teacher's states only. In closed loop it
//! drives into states of its own making (a little too close behind the car ahead, a little
//! off its lane's centre) that the teacher never showed it, and it errs there more: the
//! network alone "follows too closely and drifts off its lane" (model card). The feasibility
//! masks ([`crate::rollout`], "Feasibility masks") know, in any state, which tokens keep the
//! agent able to brake clear of the others and on the road, and they step in where the
//! sampled token does not.
//!
//! [`mask_corrections`] rolls the network out **with the masks** on training scenarios (the
//! states the network itself visits) and keeps, as training pairs, the steps where the masks
//! replaced the sampled token: the features the network saw there and the token the masks
//! kept (drawn from the network's distribution restricted to the best-scored tokens: the
//! feasible ones, where there are any). Training
//! on the teacher's pairs plus these ([`crate::train::train_from`], from the network that
//! made them) moves the network's mass away from the tokens the masks refuse, in the states
//! where it matters; a round more collects the next network's corrections (data
//! aggregation, as DAgger does). Steps where the sampled token passed add no pair: their
//! label would be the network's own sample, whose expected gradient is zero (without the
//! top-p cut; with it, a slight sharpening, not a correction).
//!
//! Deterministic: the rollouts are keyed like any rollout ([`crate::sampling`]), the jobs
//! run in parallel with rayon and their pairs are concatenated in job order.

use rayon::prelude::*;
use swm_dataset::Scenario;

use crate::data::Dataset;
use crate::map::MapContext;
use crate::net::Network;
use crate::rollout::{FeasibilityMask, LiveRollout, RolloutConfig};

/// What [`mask_corrections`] found.
#[derive(Clone, Debug, Default)]
pub struct Corrections {
    /// The pairs: features, the token kept by the masks, the class, and the episode id given
    /// with the scenario (so the validation split of [`crate::train::split`] keeps them on
    /// the side of the episode they come from).
    pub data: Dataset,
    /// Model-driven agent steps rolled out.
    pub agent_steps: u64,
    /// Of those, the steps whose sampled token the masks replaced (= `data.len()`).
    pub replaced: u64,
}

impl Corrections {
    /// The fraction of agent steps the masks stepped in on.
    pub fn replaced_fraction(&self) -> f64 {
        self.replaced as f64 / self.agent_steps.max(1) as f64
    }

    /// Adds `other`'s counts and pairs (after this one's).
    pub fn append(&mut self, other: Corrections) {
        self.agent_steps += other.agent_steps;
        self.replaced += other.replaced;
        self.data.append(other.data);
    }
}

/// Rolls `net` out with both masks on every `(scenario, episode id)` for `cfg.steps` frames
/// and `cfg.samples` samples each, and returns the steps where the masks replaced the
/// sampled token (module docs). `on_job` is called once per finished (scenario, sample),
/// from any thread.
pub fn mask_corrections(
    net: &Network,
    map: &MapContext,
    scenarios: &[(&Scenario, u32)],
    cfg: &RolloutConfig,
    on_job: &(dyn Fn() + Sync),
) -> Corrections {
    let s = cfg.samples as usize;
    let parts: Vec<Corrections> = (0..scenarios.len() * s)
        .into_par_iter()
        .map(|k| {
            let (sc, episode) = scenarios[k / s];
            let sample = (k % s) as u32;
            let mut live = LiveRollout::start(
                std::borrow::Cow::Borrowed(sc),
                map,
                cfg.clone(),
                sample,
                FeasibilityMask::default(),
            );
            let mut out = Vec::new();
            let mut c = Corrections::default();
            for _ in 0..cfg.steps {
                out.clear();
                live.step(net, map, None, &mut out);
                for (_, class, row, sampled, kept) in live.last_choices() {
                    c.agent_steps += 1;
                    if sampled != kept {
                        c.replaced += 1;
                        c.data.features.extend_from_slice(row);
                        c.data.tokens.push(kept);
                        c.data.classes.push(class);
                        c.data.episode.push(episode);
                    }
                }
            }
            on_job();
            c
        })
        .collect();
    let mut all = Corrections::default();
    for p in parts {
        all.append(p);
    }
    all
}

/// Start states for [`mask_corrections`] from a recorded episode cut into 8 equal time
/// windows with episode ids `first_id`..`first_id + 8` (as `swm train` splits a procedural
/// district: [`crate::train::split`] holds the eighth window out): scenarios (1 s of history,
/// no future: a rollout needs only its start) centred on vehicles every 10 s, at most `max`
/// of them spread evenly over the run, each with the id of the window its current frame is
/// in. Scenarios starting in the held-out window are left out, so validation states stay
/// unseen.
pub fn episode_start_scenarios(
    ep: &crate::data::Episode,
    first_id: u32,
    max: usize,
) -> Result<Vec<(Scenario, u32)>, crate::ModelError> {
    let records: Vec<swm_sim::TrajectoryRecord> = ep.frames.iter().flatten().cloned().collect();
    let opts = swm_dataset::ScenarioOptions { future_s: 0.0, stride_s: 10.0, ..Default::default() };
    let cut = swm_dataset::cut_scenarios(&records, &opts)
        .map_err(|e| crate::ModelError::Data(format!("cutting start scenarios: {e}")))?;
    let n = ep.frames.len().max(1);
    let kept: Vec<(Scenario, u32)> = cut
        .into_iter()
        .filter_map(|sc| {
            let f = (i64::from(sc.current_step) - i64::from(ep.first_frame)).clamp(0, n as i64 - 1) as usize;
            // The window `w` with `w·n/8 <= f < (w+1)·n/8`; the last is held out.
            let w = (0..8).rev().find(|w| w * n / 8 <= f)?;
            (w < 7).then_some((sc, first_id + w as u32))
        })
        .collect();
    let step = kept.len().div_ceil(max.max(1)).max(1);
    Ok(kept.into_iter().step_by(step).collect())
}
