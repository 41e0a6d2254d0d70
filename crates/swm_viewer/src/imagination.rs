//! Imagination: the world model's sampled futures of the selected agent.
//!
//! When on (`I`) and an agent is selected, the viewer cuts a scenario out of the
//! simulation's last [`HISTORY_STEPS`](crate::agents::HISTORY_STEPS) steps (every agent
//! within [`RADIUS_M`] of the selected one at the last step; the selected agent is scenario
//! agent 0, the others follow in run-id order; frames `-10..=0`) and rolls it out with the
//! shipped model (`swm_model::rollout_one`, CPU, feasibility masks on) for [`SAMPLES`]
//! samples of [`HORIZON_STEPS`] steps. The work runs on bevy's `AsyncComputeTaskPool`, so
//! the frame rate holds; the model and the map context are loaded by the first task and
//! kept. A new rollout starts when the selection changes or the last one is a second old.
//!
//! Drawn: each sample's path of the selected agent as a polyline fading with time; and an
//! occupancy-probability heat map on the ground: for each 2 m cell around the agent, the
//! share of samples in which any agent's centre passes through it within the horizon.
//! Sample `s` uses seed `(run seed, step)` and sample index `s`: the same state gives the
//! same futures.

use std::sync::Arc;

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, block_on, poll_once};
use swm_dataset::scenario::Scenario;
use swm_model::{MapContext, Network, RolloutConfig};
use swm_sim::TrajectoryRecord;
use swm_twin::Twin;

use crate::agents::{Selection, SimResource, TwinResource, bevy_from_twin};
use crate::overlay::{ground_quad, rgba_image};

/// Agents within this distance of the selected one take part (m).
pub const RADIUS_M: f64 = 60.0;
/// Samples drawn at start (`9`/`0` change it within [`SAMPLES_RANGE`]).
pub const SAMPLES: u32 = 8;
/// The sample counts the panel allows.
pub const SAMPLES_RANGE: std::ops::RangeInclusive<u32> = 1..=64;
/// Steps imagined (3 s).
pub const HORIZON_STEPS: u32 = 30;
/// Heat map cell (m) and cells per side.
pub const HEAT_CELL_M: f64 = 2.0;
/// Cells per side of the heat map.
pub const HEAT_CELLS: u32 = 64;

/// The model and its map, loaded once (shared with the model-driven traffic).
pub struct LoadedModel {
    pub(crate) net: Network,
    pub(crate) map: MapContext,
}

/// What the model imagined for one agent at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Futures {
    /// The run id of the agent.
    pub agent_id: u64,
    /// The simulation step the futures start from.
    pub step: u64,
    /// Per sample, the agent's positions (twin frame), frame 0 (now) first.
    pub paths: Vec<Vec<[f64; 3]>>,
    /// Centre of the heat map (twin frame) and per-cell probability, row 0 north.
    pub heat_centre_m: [f64; 2],
    /// `HEAT_CELLS × HEAT_CELLS` probabilities in `[0, 1]`, row-major, row 0 north.
    pub heat: Vec<f32>,
    /// Wall time of the rollouts (s).
    pub wall_s: f64,
}

impl Futures {
    /// Mean displacement of the agent over the horizon and the spread of the end points (m).
    pub fn displacement_and_spread_m(&self) -> (f64, f64) {
        let ends: Vec<[f64; 3]> = self.paths.iter().filter_map(|p| p.last().copied()).collect();
        let starts: Vec<[f64; 3]> = self.paths.iter().filter_map(|p| p.first().copied()).collect();
        if ends.is_empty() {
            return (0.0, 0.0);
        }
        let n = ends.len() as f64;
        let disp =
            ends.iter().zip(&starts).map(|(e, s)| ((e[0] - s[0]).powi(2) + (e[1] - s[1]).powi(2)).sqrt()).sum::<f64>()
                / n;
        let mx = ends.iter().map(|e| e[0]).sum::<f64>() / n;
        let my = ends.iter().map(|e| e[1]).sum::<f64>() / n;
        let spread = (ends.iter().map(|e| (e[0] - mx).powi(2) + (e[1] - my).powi(2)).sum::<f64>() / n).sqrt();
        (disp, spread)
    }
}

/// What a rollout task returns: the (possibly freshly loaded) model and the futures.
type TaskResult = Result<(Arc<LoadedModel>, Futures), String>;

/// The imagination state.
#[derive(Resource)]
pub struct Imagination {
    /// Whether futures are computed and drawn.
    pub enabled: bool,
    model: Option<Arc<LoadedModel>>,
    task: Option<Task<TaskResult>>,
    /// The latest futures.
    pub futures: Option<Futures>,
    /// The last error, if any (shown in the panel).
    pub error: Option<String>,
    heat_entity: Option<Entity>,
    /// Samples per rollout ([`SAMPLES`] at start).
    pub samples: u32,
}

impl Default for Imagination {
    fn default() -> Self {
        Imagination {
            enabled: false,
            model: None,
            task: None,
            futures: None,
            error: None,
            heat_entity: None,
            samples: SAMPLES,
        }
    }
}

impl Imagination {
    /// The model, once a rollout task has loaded it.
    pub fn model(&self) -> Option<Arc<LoadedModel>> {
        self.model.clone()
    }

    /// Imagination switched on or off, nothing computed yet.
    pub fn new(enabled: bool) -> Self {
        Imagination { enabled, samples: SAMPLES, ..Default::default() }
    }

    /// Doubles (`up`) or halves the samples within [`SAMPLES_RANGE`]; the next futures use it.
    pub fn change_samples(&mut self, up: bool) {
        let n = if up { self.samples.saturating_mul(2) } else { self.samples / 2 };
        self.samples = n.clamp(*SAMPLES_RANGE.start(), *SAMPLES_RANGE.end());
        // Recompute now rather than at the next refresh.
        self.futures = None;
    }

    /// One line for the inspector.
    pub fn summary(&self, id: u64) -> String {
        if !self.enabled {
            return "model: press I to imagine its futures".into();
        }
        if let Some(e) = &self.error {
            return format!("model: {e}");
        }
        match &self.futures {
            Some(f) if f.agent_id == id => {
                let (d, s) = f.displacement_and_spread_m();
                format!(
                    "model ({} samples, {:.0} s): moves {:.1} m, end spread {:.1} m ({:.0} ms)",
                    f.paths.len(),
                    HORIZON_STEPS as f64 * swm_sim::DT_S,
                    d,
                    s,
                    f.wall_s * 1e3
                )
            }
            _ => "model: imagining...".into(),
        }
    }
}

/// The scenario around `center` from `history` (oldest first; the last entry is frame 0),
/// or `None` when the agent is not in the last step.
pub fn scenario_from_history(history: &[Vec<TrajectoryRecord>], center: u64, radius_m: f64) -> Option<Scenario> {
    let now = history.last()?;
    let c = now.iter().find(|r| r.agent_id == center)?;
    let mut ids: Vec<u64> = now
        .iter()
        .filter(|r| r.agent_id != center && ((r.x_m - c.x_m).powi(2) + (r.y_m - c.y_m).powi(2)).sqrt() <= radius_m)
        .map(|r| r.agent_id)
        .collect();
    ids.sort_unstable();
    ids.insert(0, center);
    let index: std::collections::BTreeMap<u64, u64> = ids.iter().enumerate().map(|(i, id)| (*id, i as u64)).collect();
    let n = history.len() as i32;
    let mut rows = Vec::new();
    for (k, records) in history.iter().enumerate() {
        let frame = k as i32 - (n - 1);
        let mut at: Vec<(i32, TrajectoryRecord)> = records
            .iter()
            .filter_map(|r| {
                index.get(&r.agent_id).map(|&sid| {
                    let mut r = r.clone();
                    r.agent_id = sid;
                    (frame, r)
                })
            })
            .collect();
        at.sort_by_key(|(_, r)| r.agent_id);
        rows.extend(at);
    }
    Some(Scenario {
        scenario_id: 0,
        center_agent_id: center,
        current_time_s: c.time_s,
        current_step: c.step,
        agents: ids,
        rows,
    })
}

/// Rolls out `scenario` and reduces it to [`Futures`].
pub fn imagine(model: &LoadedModel, scenario: &Scenario, agent_id: u64, step: u64, seed: u64, samples: u32) -> Futures {
    let t0 = std::time::Instant::now();
    let samples = samples.max(1);
    let cfg = RolloutConfig { steps: HORIZON_STEPS, samples, seed: seed ^ step.rotate_left(17), ..Default::default() };
    let start = scenario.rows.iter().find(|(f, r)| *f == 0 && r.agent_id == 0).map(|(_, r)| [r.x_m, r.y_m, r.z_m]);
    let centre = start.map_or([0.0, 0.0], |s| [s[0], s[1]]);
    let mut paths = Vec::new();
    let mut counts = vec![0u32; (HEAT_CELLS * HEAT_CELLS) as usize];
    for sample in 0..samples {
        let rows = swm_model::rollout::rollout_one(&model.net, &model.map, scenario, &cfg, sample, None);
        let mut path: Vec<[f64; 3]> = start.into_iter().collect();
        let mut seen = vec![false; counts.len()];
        for (_, r) in &rows {
            if r.agent_id == 0 {
                path.push([r.x_m, r.y_m, r.z_m]);
            }
            if let Some(i) = heat_cell(centre, r.x_m, r.y_m) {
                seen[i] = true;
            }
        }
        for (c, s) in counts.iter_mut().zip(&seen) {
            *c += *s as u32;
        }
        paths.push(path);
    }
    let heat = counts.iter().map(|&c| c as f32 / samples as f32).collect();
    Futures { agent_id, step, paths, heat_centre_m: centre, heat, wall_s: t0.elapsed().as_secs_f64() }
}

/// The heat-map cell of twin point `(x, y)`, row 0 north.
fn heat_cell(centre: [f64; 2], x: f64, y: f64) -> Option<usize> {
    let half = 0.5 * HEAT_CELLS as f64 * HEAT_CELL_M;
    let col = ((x - centre[0] + half) / HEAT_CELL_M).floor();
    let row = ((centre[1] + half - y) / HEAT_CELL_M).floor();
    let n = HEAT_CELLS as f64;
    (col >= 0.0 && row >= 0.0 && col < n && row < n).then(|| row as usize * HEAT_CELLS as usize + col as usize)
}

pub(crate) fn load_model(twin: &Twin, signal_seed: u64) -> Result<LoadedModel, String> {
    let path = swm_model::default_model_path();
    // `{:#}`: the message with its causes (the I/O error is the model error's source).
    let net = Network::load(&path).map_err(|e| format!("loading {}: {:#}", path.display(), anyhow::Error::from(e)))?;
    let map =
        MapContext::new(twin, Some(signal_seed)).map_err(|e| format!("map context: {:#}", anyhow::Error::from(e)))?;
    Ok(LoadedModel { net, map })
}

/// Starts a rollout when due; collects finished ones.
pub fn imagination_tasks(
    mut imagination: ResMut<Imagination>,
    selection: Res<Selection>,
    sim: Res<SimResource>,
    twin: Res<TwinResource>,
) {
    if let Some(task) = imagination.task.as_mut()
        && let Some(result) = block_on(poll_once(task))
    {
        imagination.task = None;
        match result {
            Ok((model, futures)) => {
                imagination.model = Some(model);
                imagination.futures = Some(futures);
                imagination.error = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "imagination");
                imagination.error = Some(e);
                imagination.enabled = false;
            }
        }
    }
    let Some(id) = selection.0 else { return };
    if !imagination.enabled || imagination.task.is_some() {
        return;
    }
    let due = match &imagination.futures {
        Some(f) => f.agent_id != id || sim.steps_run >= f.step + 10,
        None => true,
    };
    if !due {
        return;
    }
    let history: Vec<Vec<TrajectoryRecord>> = sim.history.iter().cloned().collect();
    let Some(scenario) = scenario_from_history(&history, id, RADIUS_M) else { return };
    let (model, twin, step, seed) = (imagination.model.clone(), twin.0.clone(), sim.steps_run, sim.params.seed);
    let samples = imagination.samples;
    imagination.task = Some(AsyncComputeTaskPool::get().spawn(async move {
        let model = match model {
            Some(m) => m,
            None => Arc::new(load_model(&twin, seed)?),
        };
        let futures = imagine(&model, &scenario, id, step, seed, samples);
        Ok((model, futures))
    }));
}

/// Draws the futures (fading paths) and the heat map.
#[allow(clippy::too_many_arguments)]
pub fn draw_imagination(
    mut commands: Commands,
    mut imagination: ResMut<Imagination>,
    selection: Res<Selection>,
    mut gizmos: Gizmos,
    mut images: ResMut<Assets<Image>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut quads: Query<(&mut Transform, &MeshMaterial3d<StandardMaterial>, &mut Visibility)>,
    mut last_drawn: Local<Option<(u64, u64)>>,
) {
    let show = imagination.enabled && selection.0.is_some();
    let futures = imagination.futures.clone().filter(|f| show && Some(f.agent_id) == selection.0);
    if let Some(f) = &futures {
        for path in &f.paths {
            let n = path.len().max(2) as f32;
            gizmos.linestrip_gradient(path.iter().enumerate().map(|(i, p)| {
                let a = 1.0 - i as f32 / n;
                (bevy_from_twin(p[0], p[1], p[2] + 1.0), Color::srgba(1.0, 0.85, 0.1, 0.25 + 0.75 * a))
            }));
        }
    }
    // The heat map quad.
    let Some(f) = futures else {
        if let Some(e) = imagination.heat_entity
            && let Ok((_, _, mut v)) = quads.get_mut(e)
        {
            *v = Visibility::Hidden;
        }
        return;
    };
    let key = (f.agent_id, f.step);
    let data: Vec<u8> = f
        .heat
        .iter()
        .flat_map(
            |p| if *p <= 0.0 { [0, 0, 0, 0] } else { [255, (200.0 * (1.0 - p)) as u8, 0, (60.0 + 170.0 * p) as u8] },
        )
        .collect();
    let z = f.paths.first().and_then(|p| p.first()).map_or(0.0, |p| p[2]) + 0.4;
    let at = bevy_from_twin(f.heat_centre_m[0], f.heat_centre_m[1], z);
    match imagination.heat_entity {
        Some(e) => {
            if let Ok((mut t, mat, mut v)) = quads.get_mut(e) {
                *v = Visibility::Visible;
                if *last_drawn != Some(key) {
                    t.translation = at;
                    if let Some(m) = materials.get(&mat.0)
                        && let Some(img) = m.base_color_texture.clone()
                        && let Some(mut image) = images.get_mut(&img)
                    {
                        image.data = Some(data);
                    }
                }
            }
        }
        None => {
            let size = (HEAT_CELLS as f64 * HEAT_CELL_M) as f32;
            let image = images.add(rgba_image(HEAT_CELLS, HEAT_CELLS, data));
            let material = materials.add(StandardMaterial {
                base_color_texture: Some(image),
                alpha_mode: AlphaMode::Blend,
                unlit: true,
                cull_mode: None,
                double_sided: true,
                ..default()
            });
            let e = commands
                .spawn((
                    Mesh3d(meshes.add(ground_quad([size, size]))),
                    MeshMaterial3d(material),
                    Transform::from_translation(at),
                    Visibility::Visible,
                    bevy::light::NotShadowCaster,
                ))
                .id();
            imagination.heat_entity = Some(e);
        }
    }
    *last_drawn = Some(key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use swm_sim::AgentKind;

    #[test]
    fn the_sample_count_doubles_and_halves_within_its_range() {
        let mut im = Imagination::new(true);
        assert_eq!(im.samples, SAMPLES);
        assert_eq!(Imagination::default().samples, SAMPLES);
        im.change_samples(true);
        assert_eq!(im.samples, 2 * SAMPLES);
        for _ in 0..10 {
            im.change_samples(true);
        }
        assert_eq!(im.samples, *SAMPLES_RANGE.end());
        for _ in 0..10 {
            im.change_samples(false);
        }
        assert_eq!(im.samples, *SAMPLES_RANGE.start());
    }

    fn rec(id: u64, step: u32, x: f64) -> TrajectoryRecord {
        TrajectoryRecord {
            agent_id: id,
            kind: AgentKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            step,
            time_s: step as f64 * 0.1,
            x_m: x,
            y_m: 0.0,
            z_m: 0.0,
            heading_rad: 0.0,
            speed_mps: 10.0,
            accel_mps2: 0.0,
            lane: Some(0),
            signal: None,
        }
    }

    #[test]
    fn scenarios_put_the_selected_agent_first() {
        let history: Vec<Vec<TrajectoryRecord>> =
            (0..3).map(|s| vec![rec(5, s, s as f64), rec(9, s, 10.0), rec(2, s, 500.0), rec(7, s, -20.0)]).collect();
        let sc = scenario_from_history(&history, 9, 60.0).expect("agent present");
        assert_eq!(sc.agents, vec![9, 5, 7], "agent 2 is too far");
        let frames: Vec<i32> = sc.rows.iter().map(|(f, _)| *f).collect();
        assert_eq!(frames.first(), Some(&-2));
        assert_eq!(frames.last(), Some(&0));
        assert!(sc.rows.iter().filter(|(f, _)| *f == 0).any(|(_, r)| r.agent_id == 0 && r.x_m == 10.0));
        assert!(scenario_from_history(&history, 42, 60.0).is_none());
    }

    #[test]
    fn heat_cells_are_north_up() {
        let c = [100.0, 200.0];
        let n = HEAT_CELLS as usize;
        assert_eq!(heat_cell(c, 100.0 - 63.9, 200.0 + 63.9), Some(0));
        assert_eq!(heat_cell(c, 100.0 + 63.9, 200.0 - 63.9), Some(n * n - 1));
        assert_eq!(heat_cell(c, 100.0 + 64.1, 200.0), None);
    }
}
