//! Scenario extraction: training samples for motion prediction.
//!
//! A [`Scenario`] is a window of a run around one *centre* agent at one *current* time: every
//! agent within [`ScenarioOptions::radius_m`] of the centre at the current time, with its
//! records from `history_s` before to `future_s` after, on a 10 Hz grid of frames
//! (frame 0 is the current time, negative frames are history). Agent ids are remapped per
//! scenario: the centre is 0, the others 1, 2, ... in order of their run ids.
//!
//! Records are matched to frames by time (within half a frame), so runs recorded at 10 Hz
//! fill every frame and slower imports (SUMO at 1 Hz) fill every tenth; frames an agent has
//! no record for are absent (no interpolation). A centre needs a record at every frame.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swm_sim::{AgentKind, TrajectoryRecord};

use crate::DatasetError;
use crate::trajectories::TrajectoryWriter;

/// Frames per second of scenarios.
pub const SCENARIO_HZ: f64 = 10.0;

/// Which agents scenarios are centred on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum CenterSelector {
    /// Every vehicle (car, bus, truck).
    #[default]
    Vehicles,
    /// Every agent of one kind.
    Kind(AgentKind),
    /// These agents (run ids).
    Agents(Vec<u64>),
    /// Every agent.
    All,
}

impl CenterSelector {
    fn accepts(&self, r: &TrajectoryRecord) -> bool {
        match self {
            CenterSelector::Vehicles => r.kind.is_vehicle(),
            CenterSelector::Kind(k) => r.kind == *k,
            CenterSelector::Agents(ids) => ids.contains(&r.agent_id),
            CenterSelector::All => true,
        }
    }
}

/// How scenarios are cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioOptions {
    pub centers: CenterSelector,
    pub history_s: f64,
    pub future_s: f64,
    pub radius_m: f64,
    /// Time between two current times of the same centre.
    pub stride_s: f64,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        ScenarioOptions {
            centers: CenterSelector::Vehicles,
            history_s: 1.0,
            future_s: 8.0,
            radius_m: 50.0,
            stride_s: 1.0,
        }
    }
}

/// One scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Index in the order scenarios were cut (current time, then centre id).
    pub scenario_id: u64,
    /// The centre's run id (its scenario id is 0).
    pub center_agent_id: u64,
    pub current_time_s: f64,
    pub current_step: u32,
    /// Run ids of the scenario's agents; position = scenario id.
    pub agents: Vec<u64>,
    /// `(frame, record)` with remapped `agent_id`, ordered by frame then agent.
    pub rows: Vec<(i32, TrajectoryRecord)>,
}

fn frame_key(time_s: f64) -> i64 {
    (time_s * SCENARIO_HZ).round() as i64
}

/// Cuts scenarios out of a run's records (any order).
pub fn cut_scenarios(records: &[TrajectoryRecord], opts: &ScenarioOptions) -> Result<Vec<Scenario>, DatasetError> {
    for (name, v) in [
        ("history_s", opts.history_s),
        ("future_s", opts.future_s),
        ("radius_m", opts.radius_m),
        ("stride_s", opts.stride_s),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(DatasetError::Options(format!("{name} must be a finite number >= 0, got {v}")));
        }
    }
    let stride = frame_key(opts.stride_s).max(1);
    let (hist, fut) = (frame_key(opts.history_s), frame_key(opts.future_s));
    // Records on the 10 Hz grid (within half a frame), by frame then agent.
    let mut grid: BTreeMap<i64, BTreeMap<u64, &TrajectoryRecord>> = BTreeMap::new();
    for r in records {
        let k = frame_key(r.time_s);
        if ((r.time_s * SCENARIO_HZ) - k as f64).abs() <= 0.5 {
            grid.entry(k).or_default().entry(r.agent_id).or_insert(r);
        }
    }
    let Some((&first, _)) = grid.first_key_value() else { return Ok(Vec::new()) };
    let present = |k: i64, id: u64| grid.get(&k).is_some_and(|m| m.contains_key(&id));
    let mut out = Vec::new();
    let r2 = opts.radius_m * opts.radius_m;
    for (&k, now) in grid.range(first + hist..) {
        if (k - first - hist) % stride != 0 {
            continue;
        }
        for (&cid, c) in now {
            if !opts.centers.accepts(c) || !(k - hist..=k + fut).all(|f| present(f, cid)) {
                continue;
            }
            let mut agents = vec![cid];
            agents.extend(
                now.iter()
                    .filter(|(id, r)| **id != cid && (r.x_m - c.x_m).powi(2) + (r.y_m - c.y_m).powi(2) <= r2)
                    .map(|(id, _)| *id),
            );
            let mut rows = Vec::new();
            for f in k - hist..=k + fut {
                let Some(at) = grid.get(&f) else { continue };
                for (new_id, old_id) in agents.iter().enumerate() {
                    if let Some(r) = at.get(old_id) {
                        let mut r = (*r).clone();
                        r.agent_id = new_id as u64;
                        rows.push(((f - k) as i32, r));
                    }
                }
            }
            out.push(Scenario {
                scenario_id: out.len() as u64,
                center_agent_id: cid,
                current_time_s: c.time_s,
                current_step: c.step,
                agents,
                rows,
            });
        }
    }
    tracing::debug!(scenarios = out.len(), "scenarios cut");
    Ok(out)
}

/// What [`write_scenarios`] wrote: a scenario directory's `index.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioIndex {
    pub options: Option<ScenarioOptions>,
    pub scenarios: u64,
    pub rows: u64,
    /// `(file name, scenarios, rows)` per shard.
    pub shards: Vec<(String, u64, u64)>,
    /// The run the scenarios were cut out of, when its `manifest.json` was there (absent in
    /// directories written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ScenarioSource>,
}

impl ScenarioIndex {
    /// Reads `dir/index.json`; `Ok(None)` when the directory has none.
    pub fn read(dir: &Path) -> Result<Option<ScenarioIndex>, DatasetError> {
        let path = dir.join("index.json");
        if !path.is_file() {
            return Ok(None);
        }
        crate::manifest::read_json(&path).map(Some)
    }
}

/// The run scenario directory `dir` was cut out of, from its `index.json`: `None` for a
/// directory without one, or written before the run was recorded there.
pub fn scenario_source(dir: &Path) -> Result<Option<ScenarioSource>, DatasetError> {
    Ok(ScenarioIndex::read(dir)?.and_then(|i| i.source))
}

/// Where a scenario directory's scenarios come from: the run they were cut out of, as its
/// [`RunManifest`](crate::RunManifest) describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSource {
    /// What made the run (`swm_sim`, `sumo-fcd`).
    pub source: String,
    /// The twin the run was made on.
    pub twin: crate::TwinRef,
    /// The run's seed (simulated runs): it decides the signal plans, so rollouts of these
    /// scenarios can run the signals on past the recorded frames.
    pub seed: Option<u64>,
}

impl ScenarioSource {
    /// The source recorded in `run`'s manifest.
    pub fn of_run(run: &crate::RunManifest) -> ScenarioSource {
        ScenarioSource { source: run.source.clone(), twin: run.twin.clone(), seed: run.seed }
    }

    /// Checks that the twin file `swt` is the one the run was made on (size and CRC-32), so
    /// that the scenarios' coordinates mean the same places; `scenarios` names the
    /// directory in the error.
    pub fn check_twin(&self, scenarios: &Path, swt: &Path) -> Result<(), DatasetError> {
        let (bytes, crc) = crate::file_crc32(swt)?;
        self.check_twin_bytes(scenarios, swt, bytes, crc)
    }

    /// Whether a twin file of this size and CRC-32 is the run's twin.
    pub fn is_twin(&self, bytes: u64, crc32: u32) -> bool {
        bytes == self.twin.bytes && format!("{crc32:08x}") == self.twin.crc32
    }

    /// [`ScenarioSource::check_twin`] for a twin whose size and CRC-32 are known.
    pub fn check_twin_bytes(&self, scenarios: &Path, swt: &Path, bytes: u64, crc32: u32) -> Result<(), DatasetError> {
        if self.is_twin(bytes, crc32) {
            return Ok(());
        }
        let crc = format!("{crc32:08x}");
        Err(DatasetError::TwinMismatch {
            scenarios: scenarios.to_path_buf(),
            twin: swt.to_path_buf(),
            expected: format!(
                "{:?} (file {}, {} bytes, CRC-32 {})",
                self.twin.name, self.twin.file, self.twin.bytes, self.twin.crc32
            ),
            found: format!("{bytes} bytes, CRC-32 {crc}"),
        })
    }
}

/// Writes scenarios into `dir` as Parquet shards `scenarios-00000.parquet`, ... of at most
/// `per_shard` scenarios each (schema `swm-scenarios/1`), plus `index.json`, which records
/// `source` (the run they were cut out of) when given.
pub fn write_scenarios(
    dir: &Path,
    scenarios: &[Scenario],
    opts: &ScenarioOptions,
    per_shard: usize,
    source: Option<ScenarioSource>,
) -> Result<(ScenarioIndex, Vec<PathBuf>), DatasetError> {
    if per_shard == 0 {
        return Err(DatasetError::Options("scenarios per shard must be at least 1".to_string()));
    }
    std::fs::create_dir_all(dir).map_err(DatasetError::io(dir))?;
    let mut index = ScenarioIndex { options: Some(opts.clone()), source, ..Default::default() };
    let mut paths = Vec::new();
    for (i, shard) in scenarios.chunks(per_shard).enumerate() {
        let name = format!("scenarios-{i:05}.parquet");
        let path = dir.join(&name);
        let mut w = TrajectoryWriter::create_scenarios(&path)?;
        for s in shard {
            w.write_scenario_rows(s.scenario_id, &s.rows)?;
        }
        let rows = w.finish()?;
        index.scenarios += shard.len() as u64;
        index.rows += rows;
        index.shards.push((name, shard.len() as u64, rows));
        paths.push(path);
    }
    crate::manifest::write_json(&dir.join("index.json"), &index)?;
    Ok((index, paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, kind: AgentKind, step: u32, x: f64) -> TrajectoryRecord {
        TrajectoryRecord {
            agent_id: id,
            kind,
            length_m: 4.5,
            width_m: 1.8,
            step,
            time_s: f64::from(step) * 0.1,
            x_m: x,
            y_m: 0.0,
            z_m: 0.0,
            heading_rad: 0.0,
            speed_mps: 1.0,
            accel_mps2: 0.0,
            lane: None,
            signal: None,
        }
    }

    #[test]
    fn cuts_windows_with_neighbours_and_remapped_ids() {
        // Agent 10 (car) for 12 s, agent 20 (pedestrian) 30 m away, agent 30 (car) 200 m away.
        let mut records = Vec::new();
        for step in 0..120 {
            records.push(rec(10, AgentKind::Car, step, 0.0));
            records.push(rec(20, AgentKind::Pedestrian, step, 30.0));
            records.push(rec(30, AgentKind::Car, step, 200.0));
        }
        let opts = ScenarioOptions::default();
        let s = cut_scenarios(&records, &opts).unwrap();
        // Current times 1.0, 2.0, 3.0 s (future to 11.0 s <= 11.9 s); two vehicle centres each.
        assert_eq!(s.len(), 6);
        let first = &s[0];
        assert_eq!((first.center_agent_id, first.current_step), (10, 10));
        assert_eq!(first.agents, vec![10, 20]);
        assert_eq!(first.rows.len(), 91 * 2);
        assert_eq!(first.rows[0].0, -10);
        assert_eq!(first.rows.last().unwrap().0, 80);
        assert!(first.rows.iter().all(|(_, r)| r.agent_id < 2));
        assert_eq!(s[1].agents, vec![30]);
        let peds = ScenarioOptions { centers: CenterSelector::Kind(AgentKind::Pedestrian), ..opts.clone() };
        assert_eq!(cut_scenarios(&records, &peds).unwrap().len(), 3);
        let bad = ScenarioOptions { radius_m: -1.0, ..opts.clone() };
        assert!(cut_scenarios(&records, &bad).is_err());

        let dir = tempfile::tempdir().unwrap();
        let (index, paths) = write_scenarios(dir.path(), &s, &opts, 4, None).unwrap();
        assert_eq!((index.scenarios, paths.len()), (6, 2));
        let rows = crate::trajectories::read_scenario_rows(&paths[1]).unwrap();
        assert_eq!(rows[0].scenario_id, 4);
        assert_eq!(index.rows, s.iter().map(|s| s.rows.len() as u64).sum::<u64>());
        assert_eq!(ScenarioIndex::read(dir.path()).unwrap(), Some(index));
        assert_eq!(ScenarioIndex::read(&dir.path().join("elsewhere")).unwrap(), None);
    }

    #[test]
    fn the_index_records_the_run_and_knows_its_twin() {
        let dir = tempfile::tempdir().unwrap();
        let swt = dir.path().join("city.swt");
        std::fs::write(&swt, b"the twin's bytes").unwrap();
        let mut run = crate::RunManifest::new("swm_sim");
        run.twin = crate::manifest::twin_ref("city", &swt).unwrap();
        run.seed = Some(7);
        let source = ScenarioSource::of_run(&run);
        let records: Vec<_> = (0..120).map(|step| rec(10, AgentKind::Car, step, 0.0)).collect();
        let opts = ScenarioOptions::default();
        let s = cut_scenarios(&records, &opts).unwrap();
        let out = dir.path().join("sc");
        write_scenarios(&out, &s, &opts, 4, Some(source.clone())).unwrap();
        let index = ScenarioIndex::read(&out).unwrap().unwrap();
        assert_eq!(index.source.as_ref(), Some(&source));
        assert_eq!(index.source.as_ref().unwrap().seed, Some(7));
        source.check_twin(&out, &swt).unwrap();
        // One byte changed: another twin, named with both checksums.
        std::fs::write(&swt, b"the twin's bytez").unwrap();
        let e = source.check_twin(&out, &swt).unwrap_err().to_string();
        assert!(e.contains("city.swt") && e.contains(&run.twin.crc32) && e.contains("give the twin"), "{e}");
        // An index written before the source was recorded still reads.
        std::fs::write(out.join("index.json"), r#"{"options":null,"scenarios":0,"rows":0,"shards":[]}"#).unwrap();
        assert_eq!(ScenarioIndex::read(&out).unwrap().unwrap().source, None);
    }
}
