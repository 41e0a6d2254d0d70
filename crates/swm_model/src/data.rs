//! Training data: teacher trajectories turned into (features, token) pairs.
//!
//! An [`Episode`] is a stretch of recorded world on one twin: records grouped by frame
//! (10 Hz). A whole teacher run is one episode; so is one scenario (frames −10..=80).
//! [`samples_from_episode`] tokenises every agent's contiguous track in closed loop
//! ([`crate::tokens::tokenize_track`]), then at every `stride`-th frame computes the
//! features of every agent that has a next step, from the **reconstructed** states of all
//! agents (the states a rollout would produce, so training and rollout inputs agree), with
//! the route intent taken from the agent's recorded future (hindsight, up to 8 s).
//!
//! [`procgen_episodes`] makes teacher data from scratch: districts from
//! [`swm_procgen::DistrictParams`] with the given seeds (size reduced to
//! [`ProcgenDataOptions::size_m`]), simulated with [`swm_sim::Simulation`] (the signal
//! plans are seeded with the run seed, which the episode carries).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use swm_core::ErrorChain;
use swm_dataset::Scenario;
use swm_sim::{AgentKind, SimConfig, Simulation, TrajectoryRecord};
use swm_twin::{P2, Twin};

use crate::ModelError;
use crate::features::{AgentView, FEATURE_DIM, HISTORY_STEPS, Intent, agent_features};
use crate::map::MapContext;
use crate::tokens::{AgentClass, Kinematics, tokenize_track};

/// Records by frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Episode {
    /// `frames[f]`: the records of frame `first_frame + f` (any agent order).
    pub frames: Vec<Vec<TrajectoryRecord>>,
    pub first_frame: i32,
    /// Time of frame 0 (s): a record of frame `f` is at `time0_s + 0.1 f`.
    pub time0_s: f64,
}

impl Episode {
    /// From records carrying their frame (scenario rows).
    pub fn from_rows(rows: &[(i32, TrajectoryRecord)]) -> Episode {
        let Some(min) = rows.iter().map(|r| r.0).min() else { return Episode::default() };
        let max = rows.iter().map(|r| r.0).max().unwrap_or(min);
        let mut frames = vec![Vec::new(); (max - min + 1) as usize];
        let mut time0_s = 0.0;
        for (f, r) in rows {
            frames[(f - min) as usize].push(r.clone());
            if *f == 0 {
                time0_s = r.time_s;
            }
        }
        if !rows.iter().any(|r| r.0 == 0)
            && let Some((f, r)) = rows.first()
        {
            time0_s = r.time_s - 0.1 * f64::from(*f);
        }
        Episode { frames, first_frame: min, time0_s }
    }

    /// From a scenario.
    pub fn from_scenario(s: &Scenario) -> Episode {
        Episode::from_rows(&s.rows)
    }
}

/// Kinematics of a record.
pub fn kinematics(r: &TrajectoryRecord) -> Kinematics {
    Kinematics { point_enu: [r.x_m, r.y_m], heading_rad: r.heading_rad, speed_mps: r.speed_mps.max(0.0) }
}

/// Training pairs.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Row-major `[len, FEATURE_DIM]`.
    pub features: Vec<f32>,
    pub tokens: Vec<u16>,
    pub classes: Vec<AgentClass>,
    /// Which episode each pair came from (for validation splits).
    pub episode: Vec<u32>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    pub fn append(&mut self, mut other: Dataset) {
        self.features.append(&mut other.features);
        self.tokens.append(&mut other.tokens);
        self.classes.append(&mut other.classes);
        self.episode.append(&mut other.episode);
    }
    /// Pairs at these indices.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut d = Dataset::default();
        for &i in idx {
            d.features.extend_from_slice(&self.features[i * FEATURE_DIM..(i + 1) * FEATURE_DIM]);
            d.tokens.push(self.tokens[i]);
            d.classes.push(self.classes[i]);
            d.episode.push(self.episode[i]);
        }
        d
    }
}

struct Track {
    kind: AgentKind,
    length_m: f32,
    width_m: f32,
    /// Episode frame index of `states[0]`.
    start: usize,
    /// Reconstructed states.
    states: Vec<Kinematics>,
    tokens: Vec<u16>,
    /// Recorded signal per state.
    signals: Vec<Option<swm_sim::SignalState>>,
    /// Recorded positions (for hindsight intents).
    recorded: Vec<P2>,
    /// Recorded heights (m).
    z_m: Vec<f64>,
}

/// Every contiguous track of an episode, tokenised, keyed by (agent id, segment start).
fn tracks(ep: &Episode) -> Vec<Track> {
    let mut by_agent: BTreeMap<u64, Vec<(usize, &TrajectoryRecord)>> = BTreeMap::new();
    for (f, recs) in ep.frames.iter().enumerate() {
        for r in recs {
            by_agent.entry(r.agent_id).or_default().push((f, r));
        }
    }
    let mut out = Vec::new();
    for (_, mut list) in by_agent {
        list.sort_by_key(|x| x.0);
        list.dedup_by_key(|x| x.0);
        let mut i = 0;
        while i < list.len() {
            let mut j = i + 1;
            while j < list.len() && list[j].0 == list[j - 1].0 + 1 {
                j += 1;
            }
            let seg = &list[i..j];
            let r0 = seg[0].1;
            let class = AgentClass::of(r0.kind);
            let recorded: Vec<Kinematics> = seg.iter().map(|x| kinematics(x.1)).collect();
            let (tokens, states) = tokenize_track(class, &recorded);
            out.push(Track {
                kind: r0.kind,
                length_m: r0.length_m,
                width_m: r0.width_m,
                start: seg[0].0,
                states,
                tokens,
                signals: seg.iter().map(|x| x.1.signal).collect(),
                recorded: recorded.iter().map(|k| k.point_enu).collect(),
                z_m: seg.iter().map(|x| x.1.z_m).collect(),
            });
            i = j;
        }
    }
    out
}

/// Training pairs of one episode (module docs); frames `f` with `(first_frame + f) %
/// stride == 0` only.
pub fn samples_from_episode(map: &MapContext, ep: &Episode, stride: usize, episode_id: u32) -> Dataset {
    let tracks = tracks(ep);
    let stride = stride.max(1);
    let mut d = Dataset::default();
    let mut row = vec![0.0f32; FEATURE_DIM];
    for f in 0..ep.frames.len() {
        if (ep.first_frame as i64 + f as i64).rem_euclid(stride as i64) != 0 {
            continue;
        }
        // Agents present at f.
        let present: Vec<(&Track, usize)> =
            tracks.iter().filter(|t| f >= t.start && f < t.start + t.states.len()).map(|t| (t, f - t.start)).collect();
        if present.is_empty() {
            continue;
        }
        let views: Vec<AgentView> = present
            .iter()
            .map(|(t, k)| {
                let h0 = k.saturating_sub(HISTORY_STEPS);
                let fut_end = (*k + 80).min(t.recorded.len());
                AgentView {
                    kind: t.kind,
                    length_m: t.length_m,
                    width_m: t.width_m,
                    history: &t.states[h0..=*k],
                    recorded_signal: t.signals[*k],
                    intent: Intent::Hindsight(&t.recorded[*k..fut_end]),
                    deck_m: t.z_m[*k] - map.elevation_at(t.recorded[*k]),
                }
            })
            .collect();
        let time_s = ep.time0_s + 0.1 * f64::from(ep.first_frame + f as i32);
        for (i, (t, k)) in present.iter().enumerate() {
            if *k >= t.tokens.len() {
                continue;
            }
            agent_features(map, &views, i, time_s, &mut row);
            d.features.extend_from_slice(&row);
            d.tokens.push(t.tokens[*k]);
            d.classes.push(AgentClass::of(t.kind));
            d.episode.push(episode_id);
        }
    }
    d
}

/// Pairs from many episodes on one map (rayon over episodes; the result is in episode
/// order whatever the thread count).
pub fn samples_from_episodes(map: &MapContext, episodes: &[Episode], stride: usize, first_id: u32) -> Dataset {
    let parts: Vec<Dataset> = episodes
        .par_iter()
        .enumerate()
        .map(|(i, ep)| samples_from_episode(map, ep, stride, first_id + i as u32))
        .collect();
    let mut d = Dataset::default();
    for p in parts {
        d.append(p);
    }
    d
}

/// How [`procgen_episodes`] makes teacher data.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcgenDataOptions {
    pub size_m: [f64; 2],
    pub vehicles: u32,
    pub pedestrians: u32,
    /// Simulated seconds recorded per district, after `warmup_s`.
    pub duration_s: f64,
    /// Seconds simulated before recording (traffic spreads from the spawn points).
    pub warmup_s: f64,
    /// The parameters every district starts from (each replaces `seed`, `name` and
    /// `size_m`); default [`swm_procgen::DistrictParams::training_default`].
    #[serde(default = "swm_procgen::DistrictParams::training_default")]
    pub district: swm_procgen::DistrictParams,
}

impl Default for ProcgenDataOptions {
    fn default() -> Self {
        ProcgenDataOptions {
            size_m: [900.0, 900.0],
            vehicles: 120,
            pedestrians: 80,
            duration_s: 60.0,
            warmup_s: 30.0,
            district: swm_procgen::DistrictParams::training_default(),
        }
    }
}

/// One procedurally generated district with its teacher run.
pub struct ProcgenRun {
    pub district_seed: u64,
    pub twin: Arc<Twin>,
    /// The run's seed (signal plans are seeded with it).
    pub sim_seed: u64,
    pub episode: Episode,
}

/// Generates, builds and simulates a district per seed (rayon over seeds; deterministic).
pub fn procgen_episodes(seeds: &[u64], opts: &ProcgenDataOptions) -> Result<Vec<ProcgenRun>, ModelError> {
    seeds
        .par_iter()
        .map(|&seed| {
            let params = swm_procgen::DistrictParams {
                seed,
                name: format!("procgen-{seed}"),
                size_m: opts.size_m,
                ..opts.district.clone()
            };
            let (twin, _) = swm_procgen::build_district(&params)
                .map_err(|e| ModelError::Data(format!("district seed {seed}: {}", ErrorChain(&e))))?;
            let twin = Arc::new(twin);
            let sim_seed = seed.wrapping_mul(1000).wrapping_add(1);
            let config = SimConfig {
                seed: sim_seed,
                vehicles: opts.vehicles,
                pedestrians: opts.pedestrians,
                duration_s: opts.warmup_s + opts.duration_s,
                record_every_steps: 1,
                density: 1.0,
            };
            let mut sim = Simulation::new(twin.clone(), config.clone())
                .map_err(|e| ModelError::Data(format!("simulating district seed {seed}: {e}")))?;
            let warm = (opts.warmup_s / 0.1).round() as u32;
            for _ in 0..warm {
                sim.step();
            }
            let first = sim.step_index();
            let mut frames = vec![sim.records()];
            let steps = (opts.duration_s / 0.1).round() as u32;
            sim.run(steps, &mut |_, r| frames.push(r.to_vec()));
            tracing::info!(seed, frames = frames.len(), "procgen teacher run");
            Ok(ProcgenRun {
                district_seed: seed,
                twin,
                sim_seed,
                episode: Episode { frames, first_frame: first as i32, time0_s: 0.0 },
            })
        })
        .collect()
}

/// Reads every scenario of a scenario directory (the shards listed in `index.json`, or
/// every `.parquet` file in it when there is no index), ordered by scenario id. A shard
/// must hold the scenarios and rows the index lists for it.
pub fn read_scenario_dir(dir: &Path) -> Result<Vec<Scenario>, ModelError> {
    let index_path = dir.join("index.json");
    // Each shard, with the (scenarios, rows) the index says it holds.
    let mut shards: Vec<(std::path::PathBuf, Option<(u64, u64)>)> = Vec::new();
    if let Some(index) = swm_dataset::ScenarioIndex::read(dir).map_err(|e| ModelError::Dataset(Box::new(e)))? {
        shards.extend(index.shards.iter().map(|(name, scenarios, rows)| (dir.join(name), Some((*scenarios, *rows)))));
    } else {
        let rd = std::fs::read_dir(dir).map_err(|source| ModelError::Io { path: dir.to_path_buf(), source })?;
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "parquet") {
                shards.push((p, None));
            }
        }
        shards.sort();
    }
    if shards.is_empty() {
        return Err(ModelError::Data(format!("no scenario shards in {}", dir.display())));
    }
    let mut by_id: BTreeMap<u64, Vec<(i32, TrajectoryRecord)>> = BTreeMap::new();
    for (shard, listed) in &shards {
        let rows =
            swm_dataset::trajectories::read_scenario_rows(shard).map_err(|e| ModelError::Dataset(Box::new(e)))?;
        if let Some((scenarios, n)) = *listed {
            let mut ids: Vec<u64> = rows.iter().map(|r| r.scenario_id).collect();
            ids.sort_unstable();
            ids.dedup();
            if (ids.len() as u64, rows.len() as u64) != (scenarios, n) {
                return Err(ModelError::Data(format!(
                    "{}: {} scenarios in {} rows, where {} lists {scenarios} in {n}",
                    shard.display(),
                    ids.len(),
                    rows.len(),
                    index_path.display()
                )));
            }
        }
        for row in rows {
            by_id.entry(row.scenario_id).or_default().push((row.frame, row.record));
        }
    }
    Ok(by_id
        .into_iter()
        .map(|(scenario_id, mut rows)| {
            rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.agent_id.cmp(&b.1.agent_id)));
            let now = rows.iter().find(|r| r.0 == 0 && r.1.agent_id == 0).or_else(|| rows.iter().find(|r| r.0 == 0));
            let (current_time_s, current_step) = now.map(|r| (r.1.time_s, r.1.step)).unwrap_or((0.0, 0));
            let mut agents: Vec<u64> = rows.iter().map(|r| r.1.agent_id).collect();
            agents.sort_unstable();
            agents.dedup();
            Scenario { scenario_id, center_agent_id: 0, current_time_s, current_step, agents, rows }
        })
        .collect())
}
