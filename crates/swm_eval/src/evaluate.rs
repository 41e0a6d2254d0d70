//! Scoring rollouts against scenarios: per-scenario statistics, then their aggregation.

use std::collections::BTreeMap;

use rayon::prelude::*;
use swm_dataset::Scenario;
use swm_sim::TrajectoryRecord;
use swm_twin::Twin;

use crate::features::{Frame, World, WorldFeatures, central_validity, world_features};
use crate::geometry::AgentBox;
use crate::occupancy::{OccupancyGrid, ious};
use crate::road::RoadMap;
use crate::wosac::{Bucket, Component, HistogramFeature, bernoulli_log_likelihood, histogram_log_likelihoods};
use crate::{EvalConfig, EvalError, Likelihoods, MethodReport, ScenarioRollout};

/// How far beyond the scenarios' records [`Evaluator::for_scenarios`] rasterises the road (m).
pub const SCENARIO_MARGIN_M: f64 = 200.0;

/// Occupancy horizons of the report (s).
pub const OCCUPANCY_HORIZONS_S: [f64; 3] = [1.0, 2.0, 3.0];

/// Scores rollouts of one twin's scenarios; holds the twin's road raster so that several
/// methods can be scored without rebuilding it.
pub struct Evaluator {
    road: RoadMap,
    cfg: EvalConfig,
}

#[derive(Clone, Copy, Debug, Default)]
struct OccStats {
    iou: Option<f64>,
    soft_iou: Option<f64>,
    copy_last_iou: Option<f64>,
}

/// What one scenario contributes.
#[derive(Clone, Debug, Default)]
struct ScenarioStats {
    /// `exp(mean log-likelihood)` per component; `None` when nothing was scored.
    likelihood: [Option<f64>; Component::COUNT],
    agents: u64,
    vehicles: u64,
    samples: u64,
    missing_rows: u64,
    min_ade_sum_m: f64,
    ade_sum_m: f64,
    ade_agents: u64,
    scene_min_ade_m: Option<f64>,
    agent_samples: u64,
    vehicle_samples: u64,
    collided: u64,
    offroad: u64,
    red_light: u64,
    log_collided: u64,
    log_offroad: u64,
    log_red_light: u64,
    occupancy: [OccStats; 3],
}

impl Evaluator {
    /// Prepares the twin's road raster (see [`crate::road`]).
    pub fn new(twin: &Twin, cfg: &EvalConfig) -> Result<Evaluator, EvalError> {
        cfg.validate()?;
        Ok(Evaluator { road: RoadMap::new(twin, cfg.road_raster_m)?, cfg: cfg.clone() })
    }

    /// Like [`Evaluator::new`], with the road raster limited to where `scenarios` are
    /// (their records' extent plus [`SCENARIO_MARGIN_M`]): much smaller on a large twin.
    /// Rollouts are expected to stay within that margin of the logged positions; farther
    /// points read as far off-road.
    pub fn for_scenarios(twin: &Twin, scenarios: &[Scenario], cfg: &EvalConfig) -> Result<Evaluator, EvalError> {
        cfg.validate()?;
        let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for (_, r) in scenarios.iter().flat_map(|s| s.rows.iter()) {
            bb = [bb[0].min(r.x_m), bb[1].min(r.y_m), bb[2].max(r.x_m), bb[3].max(r.y_m)];
        }
        let m = SCENARIO_MARGIN_M;
        let area = bb[0].is_finite().then_some([bb[0] - m, bb[1] - m, bb[2] + m, bb[3] + m]);
        Ok(Evaluator { road: RoadMap::new_within(twin, cfg.road_raster_m, area)?, cfg: cfg.clone() })
    }

    pub fn road(&self) -> &RoadMap {
        &self.road
    }

    /// Scores `rollouts` (matched to `scenarios` by `scenario_id`; every scenario needs
    /// exactly one, with at least one sample) and aggregates over scenarios.
    pub fn evaluate(&self, scenarios: &[Scenario], rollouts: &[ScenarioRollout]) -> Result<MethodReport, EvalError> {
        if scenarios.is_empty() {
            return Err(EvalError::NoScenarios);
        }
        let mut by_id: BTreeMap<u64, &ScenarioRollout> = BTreeMap::new();
        for r in rollouts {
            if by_id.insert(r.scenario_id, r).is_some() {
                return Err(EvalError::DuplicateRollout { scenario_id: r.scenario_id });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut pairs = Vec::with_capacity(scenarios.len());
        for s in scenarios {
            if !seen.insert(s.scenario_id) {
                return Err(EvalError::DuplicateScenario { scenario_id: s.scenario_id });
            }
            let r = by_id.get(&s.scenario_id).ok_or(EvalError::MissingRollout { scenario_id: s.scenario_id })?;
            if r.samples.is_empty() {
                return Err(EvalError::EmptyRollout { scenario_id: s.scenario_id });
            }
            pairs.push((s, *r));
        }
        if by_id.len() > pairs.len() {
            tracing::debug!(extra = by_id.len() - pairs.len(), "rollouts without a scenario ignored");
        }
        let stats: Vec<ScenarioStats> =
            pairs.par_iter().map(|(s, r)| self.scenario(s, r)).collect::<Result<Vec<_>, _>>()?;
        let report = aggregate(&self.cfg, &stats);
        tracing::info!(
            scenarios = report.scenarios,
            agents = report.agents,
            meta_metric = report.meta_metric,
            min_ade_m = report.min_ade_m,
            "evaluated"
        );
        Ok(report)
    }

    fn scenario(&self, scn: &Scenario, rollout: &ScenarioRollout) -> Result<ScenarioStats, EvalError> {
        let sid = scn.scenario_id;
        let min_frame = scn.rows.iter().map(|(f, _)| *f).min().unwrap_or(0).min(0);
        let max_frame = scn.rows.iter().map(|(f, _)| *f).max().unwrap_or(0).max(0);
        let (hist, fut) = ((-min_frame) as usize, max_frame as usize);
        let n_frames = hist + fut + 1;
        let n_agents = scn.rows.iter().map(|(_, r)| r.agent_id as usize + 1).max().unwrap_or(0).max(scn.agents.len());
        // The log.
        let mut log: World<'_> = vec![vec![None; n_frames]; n_agents];
        for (f, r) in &scn.rows {
            log[r.agent_id as usize][(f - min_frame) as usize] = Some(r);
        }
        let valid: Vec<Vec<bool>> = log.iter().map(|tr| tr.iter().map(Option::is_some).collect()).collect();
        let evaluated: Vec<usize> =
            (0..n_agents).filter(|&a| valid[a][hist] && valid[a][hist + 1..].iter().any(|&v| v)).collect();
        let is_vehicle: Vec<bool> =
            log.iter().map(|tr| tr.iter().flatten().next().is_some_and(|r| r.kind.is_vehicle())).collect();
        let mut st = ScenarioStats {
            agents: evaluated.len() as u64,
            vehicles: evaluated.iter().filter(|&&a| is_vehicle[a]).count() as u64,
            samples: rollout.samples.len() as u64,
            ..Default::default()
        };
        if evaluated.is_empty() || fut == 0 {
            tracing::debug!(scenario_id = sid, "no agent to evaluate");
            return Ok(st);
        }
        // The samples: logged history, sampled future.
        let mut worlds: Vec<World<'_>> = Vec::with_capacity(rollout.samples.len());
        for rows in &rollout.samples {
            let mut w: World<'_> = log.iter().map(|tr| tr.iter().take(hist + 1).copied().collect()).collect();
            for tr in &mut w {
                tr.resize(n_frames, None);
            }
            for (f, r) in rows {
                if *f < 1 || *f as usize > fut {
                    continue;
                }
                let a = r.agent_id as usize;
                if a >= n_agents {
                    return Err(EvalError::UnknownAgent { scenario_id: sid, agent_id: r.agent_id });
                }
                w[a][hist + *f as usize] = Some(r);
            }
            for &a in &evaluated {
                st.missing_rows += (1..=fut).filter(|&t| valid[a][hist + t] && w[a][hist + t].is_none()).count() as u64;
            }
            worlds.push(w);
        }
        let fr = Frame {
            history: hist,
            future: fut,
            evaluated: &evaluated,
            is_vehicle: &is_vehicle,
            distance_cap_m: self.cfg.wosac.distance_to_nearest_object.histogram.max_val + 1.0,
        };
        let log_f = world_features(&log, &fr, &self.road);
        let sim_f: Vec<WorldFeatures> = worlds.iter().map(|w| world_features(w, &fr, &self.road)).collect();

        // Validity masks over future steps (index t - 1), per evaluated agent.
        let fut_valid: Vec<Vec<bool>> = evaluated.iter().map(|&a| valid[a][hist + 1..].to_vec()).collect();
        let speed_valid_full: Vec<Vec<bool>> = evaluated.iter().map(|&a| central_validity(&valid[a])).collect();
        let accel_valid: Vec<Vec<bool>> =
            speed_valid_full.iter().map(|v| central_validity(v)[hist + 1..].to_vec()).collect();
        let speed_valid: Vec<Vec<bool>> = speed_valid_full.iter().map(|v| v[hist + 1..].to_vec()).collect();
        let veh_valid: Vec<Vec<bool>> =
            evaluated.iter().zip(&fut_valid).map(|(&a, v)| v.iter().map(|&x| x && is_vehicle[a]).collect()).collect();

        let w = &self.cfg.wosac;
        type Get = fn(&WorldFeatures) -> &Vec<Vec<f64>>;
        let hist_components: [(Component, &HistogramFeature, Get, &Vec<Vec<bool>>); 7] = [
            (Component::LinearSpeed, &w.linear_speed, |f| &f.linear_speed, &speed_valid),
            (Component::LinearAcceleration, &w.linear_acceleration, |f| &f.linear_acceleration, &accel_valid),
            (Component::AngularSpeed, &w.angular_speed, |f| &f.angular_speed, &speed_valid),
            (Component::AngularAcceleration, &w.angular_acceleration, |f| &f.angular_acceleration, &accel_valid),
            (
                Component::DistanceToNearestObject,
                &w.distance_to_nearest_object,
                |f| &f.distance_to_nearest_object,
                &fut_valid,
            ),
            (Component::TimeToCollision, &w.time_to_collision, |f| &f.time_to_collision, &veh_valid),
            (Component::DistanceToRoadEdge, &w.distance_to_road_edge, |f| &f.distance_to_road_edge, &veh_valid),
        ];
        for (c, feat, get, mask) in hist_components {
            st.likelihood[c as usize] = score_histogram(feat, get(&log_f), sim_f.iter().map(get), mask);
        }

        type GetB = fn(&WorldFeatures) -> &Vec<Vec<bool>>;
        let any =
            |f: &WorldFeatures, get: GetB, e: usize, mask: &[bool]| get(f)[e].iter().zip(mask).any(|(&x, &m)| x && m);
        let bern: [(Component, f64, GetB, bool); 3] = [
            (Component::CollisionIndication, w.collision_indication.pseudocount, |f| &f.collision, false),
            (Component::OffroadIndication, w.offroad_indication.pseudocount, |f| &f.offroad, true),
            (Component::TrafficLightViolation, w.traffic_light_violation.pseudocount, |f| &f.red_light, true),
        ];
        for (c, pseudo, get, vehicles_only) in bern {
            let (mut sum, mut n) = (0.0, 0u64);
            for (e, &a) in evaluated.iter().enumerate() {
                if vehicles_only && !is_vehicle[a] {
                    continue;
                }
                let log_hit = any(&log_f, get, e, &fut_valid[e]);
                let sim_hits: Vec<bool> = sim_f.iter().map(|f| any(f, get, e, &fut_valid[e])).collect();
                sum += bernoulli_log_likelihood(pseudo, &sim_hits, log_hit);
                n += 1;
                let hits = sim_hits.iter().filter(|&&b| b).count() as u64;
                match c {
                    Component::CollisionIndication => {
                        if hits > 0 {
                            log_event(
                                "simulated collision",
                                sid,
                                &log,
                                &worlds,
                                a,
                                hist,
                                first_steps(&sim_f, |f| &f.collision, e, &fut_valid[e]),
                            );
                        }
                        st.collided += hits;
                        st.log_collided += u64::from(log_hit);
                        st.agent_samples += sim_hits.len() as u64;
                    }
                    Component::OffroadIndication => {
                        if hits > 0 {
                            log_event(
                                "simulated off-road",
                                sid,
                                &log,
                                &worlds,
                                a,
                                hist,
                                first_steps(&sim_f, |f| &f.offroad, e, &fut_valid[e]),
                            );
                        }
                        st.offroad += hits;
                        st.log_offroad += u64::from(log_hit);
                        st.vehicle_samples += sim_hits.len() as u64;
                    }
                    _ => {
                        st.red_light += hits;
                        st.log_red_light += u64::from(log_hit);
                    }
                }
            }
            st.likelihood[c as usize] = (n > 0).then(|| (sum / n as f64).exp());
        }

        // Displacement errors (plan view) over the logged future frames.
        let mut per_sample_mean = vec![(0.0, 0u64); worlds.len()];
        for &a in &evaluated {
            let mut best = f64::INFINITY;
            let (mut sum, mut n) = (0.0, 0u64);
            for (s, wd) in worlds.iter().enumerate() {
                let (mut d, mut k) = (0.0, 0u64);
                for t in hist + 1..n_frames {
                    if let (Some(g), Some(p)) = (log[a][t], wd[a][t]) {
                        d += (g.x_m - p.x_m).hypot(g.y_m - p.y_m);
                        k += 1;
                    }
                }
                if k > 0 {
                    let ade = d / k as f64;
                    best = best.min(ade);
                    sum += ade;
                    n += 1;
                    per_sample_mean[s].0 += ade;
                    per_sample_mean[s].1 += 1;
                }
            }
            if n > 0 {
                st.min_ade_sum_m += best;
                st.ade_sum_m += sum / n as f64;
                st.ade_agents += 1;
                if let Some(r0) = log[a][hist] {
                    // Per-agent errors, for breakdowns (`RUST_LOG=swm_eval::ade=trace`).
                    tracing::trace!(
                        target: "swm_eval::ade",
                        scenario = sid,
                        agent = r0.agent_id,
                        vehicle = is_vehicle[a],
                        speed0_mps = r0.speed_mps,
                        lane0 = r0.lane.map_or(-1, i64::from),
                        min_ade_m = best,
                        ade_m = sum / n as f64,
                        "agent displacement"
                    );
                }
            }
        }
        st.scene_min_ade_m = per_sample_mean
            .iter()
            .filter(|(_, k)| *k > 0)
            .map(|(d, k)| d / *k as f64)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));

        // Occupancy around the centre agent's frame-0 position.
        let center = log
            .first()
            .and_then(|tr| tr[hist])
            .map(|r| [r.x_m, r.y_m])
            .unwrap_or_else(|| mean_position(log.iter().filter_map(|tr| tr[hist])));
        for (k, h_s) in OCCUPANCY_HORIZONS_S.iter().enumerate() {
            let h = (h_s / crate::features::DT_S).round() as usize;
            if h > fut {
                continue;
            }
            let t = hist + h;
            let agents: Vec<usize> = (0..n_agents).filter(|&a| valid[a][t]).collect();
            let occ = &self.cfg.occupancy;
            let grid = || OccupancyGrid::new(center, occ.window_m, occ.cell_m);
            let paint = |g: &mut OccupancyGrid, w: &World<'_>, frame: usize| {
                g.next_layer();
                for &a in &agents {
                    if let Some(r) = w[a][frame] {
                        g.paint(&AgentBox::of_record(r));
                    }
                }
            };
            let mut truth = grid();
            paint(&mut truth, &log, t);
            let mut pred = grid();
            for wd in &worlds {
                paint(&mut pred, wd, t);
            }
            let mut copy = grid();
            paint(&mut copy, &log, hist);
            let r = ious(&pred, worlds.len() as u32, &truth, occ.threshold);
            st.occupancy[k] =
                OccStats { iou: r.iou, soft_iou: r.soft_iou, copy_last_iou: ious(&copy, 1, &truth, occ.threshold).iou };
        }
        Ok(st)
    }
}

fn mean_position<'a>(rs: impl Iterator<Item = &'a TrajectoryRecord>) -> [f64; 2] {
    let (mut x, mut y, mut n) = (0.0, 0.0, 0.0);
    for r in rs {
        x += r.x_m;
        y += r.y_m;
        n += 1.0;
    }
    if n > 0.0 { [x / n, y / n] } else { [0.0, 0.0] }
}

/// `exp(mean log-likelihood)` of the valid logged values under the samples' histograms, per
/// agent (pooled over time with `independent_timesteps`, else per step).
fn score_histogram<'a>(
    feat: &HistogramFeature,
    log: &[Vec<f64>],
    sims: impl Iterator<Item = &'a Vec<Vec<f64>>>,
    mask: &[Vec<bool>],
) -> Option<f64> {
    let sims: Vec<&Vec<Vec<f64>>> = sims.collect();
    let (mut sum, mut n) = (0.0, 0u64);
    for (e, log_e) in log.iter().enumerate() {
        let steps: Vec<usize> = (0..log_e.len()).filter(|&t| mask[e][t] && !log_e[t].is_nan()).collect();
        if steps.is_empty() {
            continue;
        }
        if feat.independent_timesteps {
            let pool: Vec<f64> = sims.iter().flat_map(|s| s[e].iter().copied()).filter(|v| !v.is_nan()).collect();
            let vals: Vec<f64> = steps.iter().map(|&t| log_e[t]).collect();
            sum += histogram_log_likelihoods(&feat.histogram, &pool, &vals).iter().sum::<f64>();
        } else {
            for &t in &steps {
                let pool: Vec<f64> = sims.iter().map(|s| s[e][t]).filter(|v| !v.is_nan()).collect();
                sum += histogram_log_likelihoods(&feat.histogram, &pool, &[log_e[t]])[0];
            }
        }
        n += steps.len() as u64;
    }
    (n > 0).then(|| (sum / n as f64).exp())
}

fn mean(vals: impl Iterator<Item = Option<f64>>) -> f64 {
    let (mut s, mut n) = (0.0, 0u64);
    for v in vals.flatten() {
        s += v;
        n += 1;
    }
    if n > 0 { s / n as f64 } else { f64::NAN }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b > 0 { a as f64 / b as f64 } else { f64::NAN }
}

fn aggregate(cfg: &EvalConfig, stats: &[ScenarioStats]) -> MethodReport {
    let comp: Vec<f64> = (0..Component::COUNT).map(|c| mean(stats.iter().map(|s| s.likelihood[c]))).collect();
    let weights = cfg.wosac.weights();
    let meta: f64 = comp.iter().zip(&weights).map(|(l, w)| l * w).sum();
    let bucket = |b: Bucket| {
        let (mut s, mut ws) = (0.0, 0.0);
        for c in Component::ALL.iter().filter(|c| c.bucket() == b) {
            s += weights[*c as usize] * comp[*c as usize];
            ws += weights[*c as usize];
        }
        if ws > 0.0 { s / ws } else { f64::NAN }
    };
    let sum = |f: fn(&ScenarioStats) -> u64| stats.iter().map(f).sum::<u64>();
    let ade_agents = sum(|s| s.ade_agents);
    let occ = |k: usize, f: fn(&OccStats) -> Option<f64>| mean(stats.iter().map(|s| f(&s.occupancy[k])));
    MethodReport {
        meta_metric: meta,
        kinematic_metrics: bucket(Bucket::Kinematic),
        interactive_metrics: bucket(Bucket::Interactive),
        map_based_metrics: bucket(Bucket::MapBased),
        likelihoods: Likelihoods {
            linear_speed: comp[0],
            linear_acceleration: comp[1],
            angular_speed: comp[2],
            angular_acceleration: comp[3],
            distance_to_nearest_object: comp[4],
            collision_indication: comp[5],
            time_to_collision: comp[6],
            distance_to_road_edge: comp[7],
            offroad_indication: comp[8],
            traffic_light_violation: comp[9],
        },
        min_ade_m: if ade_agents > 0 {
            stats.iter().map(|s| s.min_ade_sum_m).sum::<f64>() / ade_agents as f64
        } else {
            f64::NAN
        },
        ade_m: if ade_agents > 0 {
            stats.iter().map(|s| s.ade_sum_m).sum::<f64>() / ade_agents as f64
        } else {
            f64::NAN
        },
        scene_min_ade_m: mean(stats.iter().map(|s| s.scene_min_ade_m)),
        collision_rate: ratio(sum(|s| s.collided), sum(|s| s.agent_samples)),
        offroad_rate: ratio(sum(|s| s.offroad), sum(|s| s.vehicle_samples)),
        traffic_light_violation_rate: ratio(sum(|s| s.red_light), sum(|s| s.vehicle_samples)),
        log_collision_rate: ratio(sum(|s| s.log_collided), sum(|s| s.agents)),
        log_offroad_rate: ratio(sum(|s| s.log_offroad), sum(|s| s.vehicles)),
        log_traffic_light_violation_rate: ratio(sum(|s| s.log_red_light), sum(|s| s.vehicles)),
        occupancy_iou_1s: occ(0, |o| o.iou),
        occupancy_iou_2s: occ(1, |o| o.iou),
        occupancy_iou_3s: occ(2, |o| o.iou),
        occupancy_soft_iou_1s: occ(0, |o| o.soft_iou),
        occupancy_soft_iou_2s: occ(1, |o| o.soft_iou),
        occupancy_soft_iou_3s: occ(2, |o| o.soft_iou),
        copy_last_occupancy_iou_1s: occ(0, |o| o.copy_last_iou),
        copy_last_occupancy_iou_2s: occ(1, |o| o.copy_last_iou),
        copy_last_occupancy_iou_3s: occ(2, |o| o.copy_last_iou),
        scenarios: stats.len() as u64,
        agents: sum(|s| s.agents),
        vehicles: sum(|s| s.vehicles),
        samples: sum(|s| s.samples),
        missing_sample_rows: sum(|s| s.missing_rows),
    }
}

/// Per sample, the first future step (after the history) at which evaluated agent `e` has
/// the event `get` gives (a collision, off the road), among the steps `valid` keeps (its
/// logged future).
fn first_steps(
    sim_f: &[WorldFeatures],
    get: fn(&WorldFeatures) -> &Vec<Vec<bool>>,
    e: usize,
    valid: &[bool],
) -> Vec<Option<usize>> {
    sim_f.iter().map(|f| get(f)[e].iter().zip(valid).position(|(&x, &m)| x && m)).collect()
}

/// Logs (debug) which agent (`a`, in the scenario's agents) had an event in which samples
/// and first when, for finding the scene again, and the first such sample's scene over the
/// half second up to it: the agent and everyone within 10 m of it then (pose, height,
/// speed, lane; the agent marked), each step after the agent's logged (teacher's) state
/// (`sample` none).
fn log_event(
    what: &str,
    sid: u64,
    log: &World<'_>,
    worlds: &[World<'_>],
    a: usize,
    hist: usize,
    first_step: Vec<Option<usize>>,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let agent_id = log[a].iter().flatten().next().map(|r| r.agent_id);
    tracing::debug!(scenario_id = sid, ?agent_id, ?first_step, "{what}");
    let Some((k, t)) = first_step.iter().enumerate().find_map(|(k, t)| t.map(|t| (k, t))) else { return };
    let Some(me) = worlds[k][a][hist + 1 + t] else { return };
    let near = |tr: &[Option<&TrajectoryRecord>]| {
        tr[hist + 1 + t].is_some_and(|r| (r.x_m - me.x_m).hypot(r.y_m - me.y_m) <= 10.0)
    };
    // One line per record: the log's (`sample` none) or sample `k`'s.
    let line = |u: usize, sample: Option<usize>, r: &TrajectoryRecord, this_agent: bool| {
        tracing::debug!(
            scenario_id = sid,
            ?sample,
            step = u,
            agent_id = r.agent_id,
            kind = ?r.kind,
            x_m = r.x_m,
            y_m = r.y_m,
            z_m = r.z_m,
            heading_rad = r.heading_rad,
            speed_mps = r.speed_mps,
            lane = ?r.lane,
            this_agent,
            "  scene"
        );
    };
    for u in t.saturating_sub(5)..=t {
        if let Some(r) = log[a][hist + 1 + u] {
            line(u, None, r, true);
        }
        for (b, tr) in worlds[k].iter().enumerate() {
            if let Some(r) = tr[hist + 1 + u].filter(|_| near(tr)) {
                line(u, Some(k), r, b == a);
            }
        }
    }
}
