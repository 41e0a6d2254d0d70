//! `swm`: the Seoul World Model command-line tool.

mod batch_commands;
mod commands;
mod eval_commands;
mod model_commands;
mod plots;
mod sim_commands;
mod view_command;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Seoul World Model: city digital twins from open geodata.
///
/// Typical session:
///
///   swm demo                                    # the embedded default district, end to end
///   swm ingest yeouido.osm.pbf -o yeouido.swt   # a twin from real OpenStreetMap data
///   swm inspect yeouido.swt                     # what is in it
///   swm map yeouido.swt -o yeouido.png          # look at it
///   swm export yeouido.swt --gltf yeouido.glb   # open it in Blender
///   swm simulate out/default.swt -o runs/demo/  # traffic on it: trajectories, metrics
///   swm report runs/demo/                       # what happened (and PNG plots)
///   swm view out/default.swt                    # look at it in 3D, traffic moving
///
/// Logs go to stderr; set RUST_LOG=debug for detail.
#[derive(Parser, Debug)]
#[command(name = "swm", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Do not show progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a twin from OpenStreetMap (PBF, XML, Overpass), GeoJSON and DEM files.
    ///
    /// Inputs may be mixed; they are merged into one twin. Heights of untagged buildings
    /// are estimated from a model calibrated on the tagged buildings of the same input.
    ///
    /// Examples:
    ///   swm ingest yeouido.osm.pbf -o yeouido.swt
    ///   swm ingest jamsil-overpass.osm --dem N37E127.hgt -o jamsil.swt
    ///   swm ingest buildings.geojson --height-attr HEIGHT --levels-attr GRND_FLR roads.osm.pbf -o d.swt
    ///   swm ingest seoul.osm.pbf --bbox 126.915,37.515,126.945,37.535 -o yeouido-core.swt
    #[command(verbatim_doc_comment)]
    Ingest(commands::IngestArgs),
    /// Summarise a twin file (counts, extent, height model); --json for machines.
    Inspect(commands::InspectArgs),
    /// Export a twin to GeoJSON (WGS84) and/or binary glTF (.glb, opens in Blender).
    Export(commands::ExportArgs),
    /// Draw a top-down PNG map of a twin: buildings shaded by height, roads, sidewalks,
    /// water and parks.
    Map(commands::MapArgs),
    /// Generate a procedural Seoul-like district (the project's own data, from a seed).
    Generate(commands::GenerateArgs),
    /// Run the whole pipeline on the embedded default district: generate, build, save the
    /// twin, draw the map, export glTF and GeoJSON, and print the summary.
    Demo(commands::DemoArgs),
    /// Tile an OSM extract K x K times (shifted copies with fresh ids) into one OSM XML
    /// file: large inputs for scaling benchmarks.
    Tile(commands::TileArgs),
    /// Run the teacher simulator (vehicles and pedestrians) on a twin and write a run
    /// directory: trajectories.parquet, events.json, metrics.json, manifest.json.
    ///
    /// Examples:
    ///   swm simulate out/default.swt -o runs/default/
    ///   swm simulate yeouido.swt --vehicles 400 --pedestrians 300 --duration 600 --seed 7 -o runs/y7/
    #[command(verbatim_doc_comment)]
    Simulate(sim_commands::SimulateArgs),
    /// Cut motion-prediction scenarios (agents around a centre agent, history and future at
    /// 10 Hz) out of a run into sharded Parquet files.
    Scenarios(sim_commands::ScenariosArgs),
    /// Print a run's metrics (--json for machines) and draw its plots (PNG) into the run
    /// directory: speed histogram, vehicles over time, travel times.
    Report(sim_commands::ReportArgs),
    /// Import a SUMO --fcd-output file as a run directory in a twin's frame.
    ///
    /// Examples:
    ///   swm import-fcd fcd.xml --twin yeouido.swt --net yeouido.net.xml -o runs/sumo/
    ///   swm import-fcd fcd-geo.xml --twin yeouido.swt --geo -o runs/sumo-geo/
    #[command(name = "import-fcd", verbatim_doc_comment)]
    ImportFcd(sim_commands::ImportFcdArgs),
    /// Train the world model (behaviour cloning with candle) on teacher scenarios or on
    /// procedurally generated districts; writes the model, a loss plot and a JSON report.
    /// With --rollout-rounds, training goes on in closed loop: the network is rolled out
    /// with the feasibility masks on the training districts, and the steps where the masks
    /// replaced its token join the data (DAgger), so that the network alone drives nearer
    /// to what the masks allow.
    ///
    /// Examples:
    ///   swm train --procgen-seeds 1..8 -o model.safetensors
    ///   swm train --twin city.swt --scenarios scenarios/a scenarios/b --epochs 10 -o model.safetensors
    ///   swm train --procgen-seeds 1..12 --trunk-hidden 512 -o wide.safetensors   # a wider network
    ///   swm train --procgen-seeds 1..12 --rollout-rounds 4 -o tuned.safetensors   # the shipped model's recipe
    ///   swm train --procgen-seeds 1..12 --init model.safetensors --epochs 0 --rollout-rounds 2 -o tuned.safetensors
    #[command(verbatim_doc_comment)]
    Train(model_commands::TrainArgs),
    /// Roll the world model out on scenarios (all agents, N steps, S samples) on the CPU;
    /// writes one Parquet file per sample and manifest.json.
    ///
    /// Example:
    ///   swm rollout city.swt --model model.safetensors --scenarios scenarios/a --samples 32 -o rollouts/a
    #[command(verbatim_doc_comment)]
    Rollout(model_commands::RolloutArgs),
    /// Score the world model's realism against held-out teacher scenarios (WOSAC 2025
    /// meta-metric, minADE, collision and off-road rates, occupancy IoU), with constant
    /// velocity, random tokens and the teacher under another seed in the same table;
    /// writes eval.json and PNG plots.
    ///
    /// Examples:
    ///   swm eval yeouido.swt -o eval/yeouido/              # the shipped model
    ///   swm eval jamsil.swt --model model.safetensors --samples 16 --json -o eval/jamsil/
    ///   swm eval default --max-scenarios 20 --samples 4 -o eval/default/
    #[command(verbatim_doc_comment)]
    Eval(eval_commands::EvalArgs),
    /// Headless batch rollouts at scale: a TOML file names the twins, the model, the
    /// scenario source (teacher scenarios or freshly sampled), samples, horizon, backend,
    /// seed and output; writes a hive-partitioned Parquet dataset OUT/twin=NAME/chunk-*.parquet
    /// (one table for DuckDB, Polars, pandas, Spark) in atomic, checksummed chunks.
    ///
    /// Sharding: chunk c belongs to shard c mod N, so N processes (--shard I/N, a Slurm array,
    /// a Kubernetes Indexed Job) together write exactly the single-process files. A killed
    /// run started again skips verified chunks and redoes the rest.
    ///
    /// Examples:
    ///   swm batch deploy/example-batch.toml                 # the whole batch, all cores
    ///   swm batch batch.toml --shard 3/16 --threads 8       # one of 16 processes
    ///   swm batch --verify batches/example                  # checksums and row counts
    ///   swm batch --merge batches/example                   # _manifest.json of the batch
    #[command(verbatim_doc_comment)]
    Batch(batch_commands::BatchArgs),
    /// Open the desktop viewer (the `swm-viewer` binary, crate swm_viewer): the twin in 3D
    /// with its traffic, the model's imagined futures and overlays; without a display, or
    /// with --screenshot, it renders a PNG instead. Arguments go to swm-viewer unchanged.
    ///
    /// Examples:
    ///   swm view                                   # the embedded default district
    ///   swm view yeouido.swt --camera top
    ///   swm view yeouido.swt --screenshot y.png --frames 30
    #[command(verbatim_doc_comment)]
    View(view_command::ViewArgs),
}

/// Output directory default for `demo`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("out")
}

fn main() -> std::process::ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`swm report
    // --json | head`) instead of panicking on a broken pipe in `println!`.
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
