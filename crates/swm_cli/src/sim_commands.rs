//! The simulator's subcommands: `simulate`, `scenarios`, `report`, `import-fcd`.
//!
//! A run directory holds `trajectories.parquet` (schema in `swm_dataset::trajectories`),
//! `events.json` (the simulator's events), `metrics.json` (`swm_sim::metrics::RunMetrics`)
//! and `manifest.json` (`swm_dataset::RunManifest`); `report` adds PNG plots.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use swm_dataset::fcd::FcdCoordinates;
use swm_dataset::manifest::{read_json, twin_ref, write_json};
use swm_dataset::scenario::{CenterSelector, ScenarioOptions};
use swm_dataset::trajectories::by_step;
use swm_dataset::{RunManifest, TrajectoryWriter};
use swm_sim::metrics::{MetricsAccumulator, RunMetrics};
use swm_sim::record::SimEvent;
use swm_sim::{AgentKind, SimConfig, Simulation};

use crate::commands::{load, rate_bar};

const TRAJECTORIES: &str = "trajectories.parquet";
const EVENTS: &str = "events.json";
const METRICS: &str = "metrics.json";

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// A twin file (.swt).
    pub twin: PathBuf,
    /// Vehicles kept in the district.
    #[arg(long, default_value_t = 200)]
    pub vehicles: u32,
    /// Pedestrians kept in the district.
    #[arg(long, default_value_t = 100)]
    pub pedestrians: u32,
    /// Simulated duration (s).
    #[arg(long, default_value_t = 300.0)]
    pub duration: f64,
    /// Seed of the run (same seed, same twin: same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Record every n-th step (steps are 0.1 s).
    #[arg(long, default_value_t = 1)]
    pub record_every: u32,
    /// Output run directory.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct ScenariosArgs {
    /// A run directory (with trajectories.parquet).
    pub run: PathBuf,
    /// Output directory for the shards and index.json.
    #[arg(short, long)]
    pub output: PathBuf,
    /// History before the current time (s).
    #[arg(long, default_value_t = 1.0)]
    pub history: f64,
    /// Future after the current time (s).
    #[arg(long, default_value_t = 8.0)]
    pub future: f64,
    /// Agents within this distance of the centre at the current time (m).
    #[arg(long, default_value_t = 50.0)]
    pub radius: f64,
    /// Time between two scenarios of the same centre (s).
    #[arg(long, default_value_t = 1.0)]
    pub stride: f64,
    /// Centre agents: vehicles, pedestrians or all.
    #[arg(long, default_value = "vehicles")]
    pub centers: String,
    /// Scenarios per Parquet shard.
    #[arg(long, default_value_t = 1000)]
    pub per_shard: usize,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A run directory.
    pub run: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Do not draw the PNG plots.
    #[arg(long)]
    pub no_plots: bool,
}

#[derive(Args, Debug)]
pub struct ImportFcdArgs {
    /// A SUMO --fcd-output XML file.
    pub file: PathBuf,
    /// The twin the SUMO network was made from (.swt).
    #[arg(long)]
    pub twin: PathBuf,
    /// The SUMO network (.net.xml): its `<location netOffset projParameter>` converts net
    /// coordinates to the twin frame.
    #[arg(long, conflicts_with = "geo")]
    pub net: Option<PathBuf>,
    /// The FCD has longitude/latitude (sumo --fcd-output.geo).
    #[arg(long)]
    pub geo: bool,
    /// Net offset X,Y (m) to subtract when the net is in the twin frame (no --net).
    #[arg(long, value_parser = parse_offset, allow_hyphen_values = true, conflicts_with_all = ["net", "geo"])]
    pub offset: Option<[f64; 2]>,
    /// Output run directory.
    #[arg(short, long)]
    pub output: PathBuf,
}

fn parse_offset(s: &str) -> Result<[f64; 2], String> {
    let v: Vec<f64> = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    match v[..] {
        [x, y] if x.is_finite() && y.is_finite() => Ok([x, y]),
        _ => Err(format!("offset {s:?}: expected X,Y in metres")),
    }
}

pub fn simulate(a: SimulateArgs, quiet: bool) -> Result<()> {
    if !(a.duration.is_finite() && a.duration > 0.0) {
        bail!("--duration must be a positive number of seconds (got {})", a.duration);
    }
    let twin = Arc::new(load(&a.twin)?);
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let config = SimConfig {
        seed: a.seed,
        vehicles: a.vehicles,
        pedestrians: a.pedestrians,
        duration_s: a.duration,
        record_every_steps: a.record_every.max(1),
        density: 1.0,
    };
    let steps = config.steps();
    let mut sim = Simulation::new(twin.clone(), config.clone())
        .with_context(|| format!("setting up the simulation on {}", a.twin.display()))?;
    let traj_path = a.output.join(TRAJECTORIES);
    let mut writer = TrajectoryWriter::create(&traj_path)?;
    let mut acc = MetricsAccumulator::new(&twin);
    let pb =
        rate_bar(quiet, u64::from(steps), "{spinner} simulating [{bar:30}] {pos}/{len} steps {rate} ETA {eta} {msg}");
    let mut write_err = None;
    let mut recorded_steps = 0u64;
    let mut callback_s = 0.0;
    let t0 = Instant::now();
    sim.run(steps, &mut |step, records| {
        let tc = Instant::now();
        if write_err.is_none()
            && let Err(e) = writer.write_step(records)
        {
            write_err = Some(e);
        }
        acc.push_step(step, records);
        recorded_steps += 1;
        pb.set_position(u64::from(step));
        if step % 50 == 0 {
            let vehicles = records.iter().filter(|r| r.kind.is_vehicle()).count();
            pb.set_message(format!("{vehicles} vehicles, {} peds", records.len() - vehicles));
        }
        callback_s += tc.elapsed().as_secs_f64();
    });
    let wall_s = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    if let Some(e) = write_err {
        return Err(e).context("writing the trajectories");
    }
    let rows = writer.finish()?;
    let events = sim.events().to_vec();
    let mut metrics = acc.finish(&events);
    let sim_wall_s = (wall_s - callback_s).max(1e-9);
    metrics.vehicle_updates_per_s = metrics.vehicle_updates as f64 * f64::from(config.record_every_steps) / sim_wall_s;

    write_json(&a.output.join(EVENTS), &events)?;
    write_json(&a.output.join(METRICS), &metrics)?;
    let mut manifest = RunManifest::new("swm_sim");
    manifest.twin = twin_ref(&twin.meta.name, &a.twin)?;
    manifest.seed = Some(config.seed);
    manifest.sim_config = Some(serde_json::to_value(&config)?);
    manifest.steps = recorded_steps;
    manifest.rows = rows;
    manifest.vehicles = metrics.vehicles;
    manifest.pedestrians = metrics.pedestrians;
    manifest.sim_seconds = metrics.sim_seconds;
    manifest.add_file(&a.output, TRAJECTORIES, Some(rows))?;
    manifest.add_file(&a.output, EVENTS, Some(events.len() as u64))?;
    manifest.add_file(&a.output, METRICS, None)?;
    manifest.write(&a.output)?;

    println!(
        "simulated {:.1} s ({} steps) on {:?} in {:.2} s: {} vehicles, {} pedestrians, {} rows",
        metrics.sim_seconds, steps, twin.meta.name, wall_s, metrics.vehicles, metrics.pedestrians, rows
    );
    print_metrics(&metrics);
    println!("wrote {}", a.output.display());
    Ok(())
}

fn print_metrics(m: &RunMetrics) {
    println!("  agents        {} vehicles, {} pedestrians over {:.1} s", m.vehicles, m.pedestrians, m.sim_seconds);
    println!(
        "  safety        {} vehicle collisions, {} pedestrian collisions, {} red-light violations",
        m.vehicle_collisions, m.pedestrian_collisions, m.red_light_violations
    );
    println!(
        "  flow          mean speed {:.2} m/s (max {:.2}), {} deadlocks resolved, {} arrivals",
        m.mean_speed_mps, m.max_speed_mps, m.deadlocks_resolved, m.arrivals
    );
    println!(
        "  stops         {} gridlocked (stopped > {:.0} s), {} stopped > {:.0} s, longest stop {:.0} s",
        m.gridlocked_vehicles,
        swm_sim::metrics::GRIDLOCK_S,
        m.long_stopped_vehicles,
        swm_sim::metrics::LONG_STOP_S,
        m.max_stopped_s
    );
    println!(
        "  off network   {:.1} vehicle-s off road ({} vehicles), {} pedestrian steps off the walk graph",
        m.off_road_time_s, m.off_road_vehicles, m.pedestrian_off_walk_graph
    );
    for (kind, t) in &m.travel_time_s {
        println!(
            "  travel {:<10} n {}, mean {:.1} s, median {:.1} s, p95 {:.1} s",
            kind, t.count, t.mean_s, t.median_s, t.p95_s
        );
    }
    println!("  speed         {:.0} vehicle updates/s", m.vehicle_updates_per_s);
}

pub fn report(a: ReportArgs) -> Result<()> {
    let metrics: RunMetrics =
        read_json(&a.run.join(METRICS)).with_context(|| format!("{} is not a run directory", a.run.display()))?;
    let manifest = RunManifest::read(&a.run).ok();
    let mut written = Vec::new();
    if !a.no_plots {
        written = crate::plots::write_plots(&a.run, &metrics)?;
    }
    if a.json {
        let mut v = serde_json::to_value(&metrics)?;
        if let (Some(obj), Some(m)) = (v.as_object_mut(), &manifest) {
            obj.insert("source".into(), m.source.clone().into());
            obj.insert("twin".into(), m.twin.name.clone().into());
            obj.insert("seed".into(), serde_json::to_value(m.seed)?);
            obj.insert("rows".into(), m.rows.into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if let Some(m) = &manifest {
        let seed = m.seed.map(|s| format!(", seed {s}")).unwrap_or_default();
        println!("run {} ({} on twin {:?}{seed}, {} rows)", a.run.display(), m.source, m.twin.name, m.rows);
    }
    print_metrics(&metrics);
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

pub fn scenarios(a: ScenariosArgs, quiet: bool) -> Result<()> {
    let centers = match a.centers.as_str() {
        "vehicles" => CenterSelector::Vehicles,
        "pedestrians" => CenterSelector::Kind(AgentKind::Pedestrian),
        "all" => CenterSelector::All,
        other => bail!("--centers {other:?}: expected vehicles, pedestrians or all"),
    };
    let opts =
        ScenarioOptions { centers, history_s: a.history, future_s: a.future, radius_m: a.radius, stride_s: a.stride };
    let pb = crate::commands::progress(quiet, 3, "reading trajectories");
    let path = a.run.join(TRAJECTORIES);
    let records = swm_dataset::read_trajectories(&path)?;
    pb.inc(1);
    pb.set_message("cutting scenarios");
    let scenarios = swm_dataset::cut_scenarios(&records, &opts)?;
    pb.inc(1);
    pb.set_message("writing shards");
    // The run's manifest names its twin and seed: rollouts and training find the signal
    // plans from it and refuse another twin.
    let source = if a.run.join("manifest.json").is_file() {
        Some(swm_dataset::ScenarioSource::of_run(&RunManifest::read(&a.run)?))
    } else {
        tracing::warn!(run = %a.run.display(), "no manifest.json: the scenarios' index cannot name their twin and seed");
        None
    };
    let (index, paths) = swm_dataset::write_scenarios(&a.output, &scenarios, &opts, a.per_shard, source)?;
    pb.finish_and_clear();
    println!(
        "{} scenarios ({} rows) from {} records in {} shards",
        index.scenarios,
        index.rows,
        records.len(),
        paths.len()
    );
    println!("wrote {}", a.output.display());
    Ok(())
}

pub fn import_fcd(a: ImportFcdArgs) -> Result<()> {
    let twin = load(&a.twin)?;
    let coords = match (&a.net, a.geo, a.offset) {
        (Some(net), _, _) => FcdCoordinates::from_net_file(net)?,
        (None, true, _) => FcdCoordinates::Geo,
        (None, false, Some(off)) => FcdCoordinates::Net { net_offset_m: off, projection: None },
        (None, false, None) => FcdCoordinates::Twin,
    };
    let fcd = swm_dataset::read_sumo_fcd(&a.file, coords, &twin)?;
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let mut writer = TrajectoryWriter::create(&a.output.join(TRAJECTORIES))?;
    let mut acc = MetricsAccumulator::new(&twin);
    let mut steps = 0;
    for step in by_step(&fcd.records) {
        writer.write_step(step)?;
        acc.push_step(step[0].step, step);
        steps += 1;
    }
    let rows = writer.finish()?;
    let events: Vec<SimEvent> = Vec::new();
    let metrics = acc.finish(&events);
    write_json(&a.output.join(METRICS), &metrics)?;
    write_json(&a.output.join("agents.json"), &fcd.agent_names)?;
    let mut manifest = RunManifest::new("sumo-fcd");
    manifest.twin = twin_ref(&twin.meta.name, &a.twin)?;
    manifest.input = a.file.file_name().map(|n| n.to_string_lossy().into_owned());
    manifest.steps = steps;
    manifest.rows = rows;
    manifest.vehicles = metrics.vehicles;
    manifest.pedestrians = metrics.pedestrians;
    manifest.sim_seconds = metrics.sim_seconds;
    manifest.add_file(&a.output, TRAJECTORIES, Some(rows))?;
    manifest.add_file(&a.output, METRICS, None)?;
    manifest.add_file(&a.output, "agents.json", Some(fcd.agent_names.len() as u64))?;
    manifest.write(&a.output)?;
    println!(
        "imported {} records of {} agents ({} vehicles, {} pedestrians) over {} timesteps from {}",
        rows,
        fcd.agent_names.len(),
        metrics.vehicles,
        metrics.pedestrians,
        fcd.timesteps,
        a.file.display()
    );
    println!("wrote {}", a.output.display());
    Ok(())
}
