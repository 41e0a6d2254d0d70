//! The world model's subcommands: `train` and `rollout` (see `swm_model`).
//!
//! `train` writes the model file, `<stem>-loss.png` (training loss per step, validation
//! loss per epoch) and `<stem>-training.json` (configuration, data, per-epoch metrics)
//! beside it, and `<stem>.ckpt.safetensors` after every epoch. `rollout` writes a rollout
//! directory (`swm_model::rollout::write_rollouts`: one Parquet file per sample plus
//! `manifest.json`).

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use swm_model::data::{Dataset, ProcgenDataOptions, procgen_episodes, read_scenario_dir, samples_from_episodes};
use swm_model::rollout::{RolloutManifest, write_rollouts};
use swm_model::train::{EpochStats, TrainConfig, TrainEvent, TrainReport, train_from};
use swm_model::{MapContext, Network, RolloutConfig, SamplingConfig};
use swm_twin::export::font::{draw_text, text_width};
use tiny_skia::{Color, Paint, PathBuilder, Pixmap, Stroke, Transform};

use crate::commands::{load, rate_bar};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Scenario directories (from `swm scenarios`) to train on; needs --twin.
    #[arg(long, num_args = 1..)]
    pub scenarios: Vec<PathBuf>,
    /// The twins (.swt) the scenario directories were cut on: each directory trains on the
    /// one its index.json names (size and CRC-32), so directories of several cities can
    /// train together.
    #[arg(long, num_args = 1..)]
    pub twin: Vec<PathBuf>,
    /// Seed of the teacher run the scenarios come from (recomputes signal plans); default:
    /// the run's seed that `swm scenarios` recorded in each directory's index.json, else the
    /// recorded signal states are used.
    #[arg(long)]
    pub signal_seed: Option<u64>,
    /// Make teacher data on procedurally generated districts with these seeds: `1..8`
    /// (inclusive), or a comma-separated list.
    #[arg(long)]
    pub procgen_seeds: Option<String>,
    /// District parameters (TOML, as `swm generate --config`) of the procedural training
    /// districts; each seed replaces `seed`, and they are cut to 900 m x 900 m. Default:
    /// data/training-district.toml (the embedded default district with bends and the
    /// riverside expressway).
    #[arg(long, value_name = "TOML")]
    pub district: Option<PathBuf>,
    /// Procedural districts: vehicles, pedestrians, recorded seconds.
    #[arg(long, default_value_t = 120)]
    pub vehicles: u32,
    #[arg(long, default_value_t = 80)]
    pub pedestrians: u32,
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Frames between two training frames (1 = every 0.1 s).
    #[arg(long, default_value_t = 5)]
    pub stride: usize,
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Seed of initial weights, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Width of the trunk's two hidden layers, 1 to 8192: most of the network's work (the
    /// default model's 256 does 0.36 MFLOP per vehicle step; 512 does 0.91).
    #[arg(long, default_value_t = swm_model::NetConfig::default().trunk_hidden)]
    pub trunk_hidden: usize,
    /// Width of the neighbour encoder's hidden layer and of its pooled output, 1 to 8192
    /// (the GPU engine, `--backend gpu`, runs 64 only).
    #[arg(long, default_value_t = swm_model::NetConfig::default().nbr_hidden)]
    pub neighbour_hidden: usize,
    /// Start from this model's weights instead of fresh ones (fine-tuning). Its sizes are
    /// used, and the width flags must match them or be left out. `--epochs 0` goes straight
    /// to the rollout rounds.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Rounds of rollout fine-tuning after training (`swm_model::finetune`, procedural
    /// districts only): each rolls the network out with the feasibility masks from start
    /// states of the training windows, adds the steps where the masks replaced the sampled
    /// token to the data, and trains --round-epochs more epochs from the network.
    #[arg(long, default_value_t = 0)]
    pub rollout_rounds: usize,
    /// Epochs of each rollout round.
    #[arg(long, default_value_t = 2)]
    pub round_epochs: usize,
    /// Peak learning rate of each rollout round.
    #[arg(long, default_value_t = 5e-4)]
    pub round_lr: f64,
    /// At most this many start states per district and rollout round (8 s rollouts, one
    /// sample each; vehicle-centred, every 10 s of the district's training windows).
    #[arg(long, default_value_t = 256)]
    pub round_scenarios: usize,
    /// Output model file (.safetensors).
    #[arg(short, long)]
    pub output: PathBuf,
}

impl TrainArgs {
    /// The network's sizes asked for.
    fn net(&self) -> swm_model::NetConfig {
        swm_model::NetConfig { nbr_hidden: self.neighbour_hidden, trunk_hidden: self.trunk_hidden }
    }
}

#[derive(Args, Debug)]
pub struct RolloutArgs {
    /// The twin (.swt) the scenarios are on.
    pub twin: PathBuf,
    /// A model file (.safetensors); default: the shipped assets/model/default.safetensors.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A scenario directory (from `swm scenarios`).
    #[arg(long)]
    pub scenarios: PathBuf,
    /// Samples per scenario.
    #[arg(long, default_value_t = 32)]
    pub samples: u32,
    /// Frames to roll out (0.1 s each).
    #[arg(long, default_value_t = 80)]
    pub steps: u32,
    /// Only the first N scenarios.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seed of the teacher run (signal plans); default: the run's seed that `swm scenarios`
    /// recorded in the directory's index.json, else signals are held as recorded.
    #[arg(long)]
    pub signal_seed: Option<u64>,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// `cpu` (the reference) or `gpu` (swm_gpu: a real GPU, else Mesa's lavapipe; the same
    /// rollouts within f32 tolerance).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub backend: String,
    /// Feasibility masks on the sampled tokens: `all` (collision and off-road, the
    /// default), `collision`, `offroad`, or `none` (the network's own distribution, e.g. to
    /// study the model without the guarantees the masks add).
    #[arg(long, default_value = "all", value_parser = ["all", "collision", "offroad", "none"])]
    pub masks: String,
    /// Output directory.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// The masks named by `--masks`.
pub(crate) fn feasibility_mask(name: &str) -> swm_model::FeasibilityMask {
    swm_model::FeasibilityMask {
        collision: matches!(name, "all" | "collision"),
        offroad: matches!(name, "all" | "offroad"),
    }
}

fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    if let Some((a, b)) = s.split_once("..") {
        let a: u64 = a.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
        let b: u64 = b.trim().trim_start_matches('=').parse().map_err(|e| format!("{s:?}: {e}"))?;
        if b < a || b - a > 10_000 {
            return Err(format!("{s:?}: expected A..B with A <= B"));
        }
        return Ok((a..=b).collect());
    }
    s.split(',').map(|x| x.trim().parse::<u64>().map_err(|e| format!("{s:?}: {e}"))).collect()
}

/// Prints a line above the bar (or plainly when the bar is hidden: not a terminal, --quiet).
fn say(pb: &ProgressBar, line: String) {
    if pb.is_hidden() { println!("{line}") } else { pb.println(line) }
}

/// The training bar, and the rollout rounds' bar while they roll out.
const TRAIN_BAR: &str = "{spinner} training [{bar:30}] {pos}/{len} steps {rate} ETA {eta} {msg}";
const ROUND_BAR: &str = "{spinner} {msg} [{bar:30}] {pos}/{len} rollouts {rate} ETA {eta}";

pub fn train_cmd(a: TrainArgs, quiet: bool) -> Result<()> {
    if a.district.is_some() && a.procgen_seeds.is_none() {
        bail!("--district sets the procedural districts' parameters: it needs --procgen-seeds");
    }
    if a.scenarios.is_empty() && a.procgen_seeds.is_none() {
        bail!("give --scenarios DIR... (with --twin) or --procgen-seeds A..B");
    }
    // Checked before the data is made (training checks it too), named by the flags.
    let max = swm_model::net::MAX_HIDDEN_WIDTH;
    for (flag, width) in [("--trunk-hidden", a.trunk_hidden), ("--neighbour-hidden", a.neighbour_hidden)] {
        if !(1..=max).contains(&width) {
            bail!("{flag} {width}: a width must be 1 to {max}");
        }
    }
    if a.rollout_rounds > 0 {
        if a.procgen_seeds.is_none() {
            bail!("--rollout-rounds needs --procgen-seeds (the rounds start from the districts' teacher runs)");
        }
        if a.round_epochs == 0 || a.round_scenarios == 0 {
            bail!("--round-epochs and --round-scenarios must be at least 1 with --rollout-rounds");
        }
        if !(a.round_lr.is_finite() && a.round_lr > 0.0) {
            bail!("--round-lr {}: must be a number above 0", a.round_lr);
        }
    }
    if a.epochs == 0 && a.rollout_rounds == 0 {
        bail!("--epochs 0 and no --rollout-rounds: there is nothing to train");
    }
    let start = match &a.init {
        Some(p) => {
            let n = Network::load(p).with_context(|| format!("--init {}", p.display()))?;
            let default = swm_model::NetConfig::default();
            for (flag, asked, default, has) in [
                ("--trunk-hidden", a.trunk_hidden, default.trunk_hidden, n.config.trunk_hidden),
                ("--neighbour-hidden", a.neighbour_hidden, default.nbr_hidden, n.config.nbr_hidden),
            ] {
                if asked != default && asked != has {
                    bail!("{flag} {asked}: the --init model {} has {has}", p.display());
                }
            }
            Some(n)
        }
        None if a.epochs == 0 => bail!("--epochs 0 needs --init MODEL (there is nothing to fine-tune)"),
        None => None,
    };
    let t0 = Instant::now();
    let mut data = Dataset::default();
    let mut sources = Vec::new();
    let mut episode_id = 0u32;
    // (map, start states) per district, for the rollout rounds.
    let mut round_starts = Vec::new();
    if let Some(seeds) = &a.procgen_seeds {
        let seeds = &parse_seeds(seeds).map_err(|e| anyhow::anyhow!("--procgen-seeds {e}"))?;
        // The districts' parameters, and where they came from (for the report).
        let (district, district_source) = match &a.district {
            Some(path) => (
                swm_procgen::DistrictParams::load(path).with_context(|| format!("--district {}", path.display()))?,
                path.display().to_string(),
            ),
            None => (swm_procgen::DistrictParams::training_default(), "data/training-district.toml".to_string()),
        };
        let pb = crate::commands::progress(quiet, 2, "simulating districts");
        let opts = ProcgenDataOptions {
            vehicles: a.vehicles,
            pedestrians: a.pedestrians,
            duration_s: a.duration,
            district,
            ..ProcgenDataOptions::default()
        };
        let runs = procgen_episodes(seeds, &opts)?;
        pb.inc(1);
        pb.set_message("features and tokens");
        for run in &runs {
            let map = MapContext::new(&run.twin, Some(run.sim_seed))?;
            // Each district is split into 8 time windows so that the validation split
            // (by episode id) holds whole stretches out.
            let ep = &run.episode;
            let n = ep.frames.len();
            for w in 0..8usize {
                let (lo, hi) = (w * n / 8, (w + 1) * n / 8);
                let part = swm_model::data::Episode {
                    frames: ep.frames[lo..hi].to_vec(),
                    first_frame: ep.first_frame + lo as i32,
                    time0_s: ep.time0_s,
                };
                data.append(swm_model::data::samples_from_episode(&map, &part, a.stride, episode_id));
                episode_id += 1;
            }
            if a.rollout_rounds > 0 {
                let starts = swm_model::finetune::episode_start_scenarios(ep, episode_id - 8, a.round_scenarios)
                    .with_context(|| format!("district seed {}", run.district_seed))?;
                round_starts.push((map, starts));
            }
        }
        pb.finish_and_clear();
        sources.push(format!(
            "procgen districts {:?} ({district_source}, {} m, {} vehicles, {} pedestrians, {} s)",
            seeds, opts.size_m[0], opts.vehicles, opts.pedestrians, opts.duration_s
        ));
    }
    if !a.scenarios.is_empty() {
        let runs =
            a.scenarios.iter().map(|dir| swm_dataset::scenario::scenario_source(dir)).collect::<Result<Vec<_>, _>>()?;
        if a.twin.is_empty() {
            let named = runs.iter().flatten().next().map(|s| format!(" ({})", s.twin.file)).unwrap_or_default();
            bail!("--scenarios needs --twin CITY.swt: the twin the scenarios were cut on{named}");
        }
        let checksums = a.twin.iter().map(|p| swm_dataset::file_crc32(p)).collect::<Result<Vec<_>, _>>()?;
        let mut twins: Vec<Option<swm_twin::Twin>> = a.twin.iter().map(|_| None).collect();
        // One map per (twin, signal seed): directories from different runs keep their plans.
        let mut maps: BTreeMap<(usize, Option<u64>), MapContext> = BTreeMap::new();
        for (dir, source) in a.scenarios.iter().zip(&runs) {
            let i = match source {
                Some(src) => match checksums.iter().position(|&(bytes, crc)| src.is_twin(bytes, crc)) {
                    Some(i) => i,
                    // One twin, not the run's: the check names both.
                    None if a.twin.len() == 1 => {
                        let (bytes, crc) = checksums[0];
                        src.check_twin_bytes(dir, &a.twin[0], bytes, crc)?;
                        0
                    }
                    None => bail!(
                        "{} was cut on twin {:?} ({}, CRC-32 {}), which is none of --twin {}",
                        dir.display(),
                        src.twin.name,
                        src.twin.file,
                        src.twin.crc32,
                        a.twin.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                },
                None if a.twin.len() == 1 => 0,
                None => bail!(
                    "{}/index.json does not name the twin its scenarios were cut on (an older swm wrote it): train it with a single --twin",
                    dir.display()
                ),
            };
            let seed = a.signal_seed.or(source.as_ref().and_then(|s| s.seed));
            if seed.is_none() {
                tracing::warn!(dir = %dir.display(), "no signal seed (--signal-seed, or the run's in index.json): recorded signal states");
            }
            let map = match maps.entry((i, seed)) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let twin = match &mut twins[i] {
                        Some(t) => t,
                        slot => slot.insert(load(&a.twin[i])?),
                    };
                    e.insert(MapContext::new(twin, seed)?)
                }
            };
            let scenarios = read_scenario_dir(dir)?;
            let episodes: Vec<_> = scenarios.iter().map(swm_model::data::Episode::from_scenario).collect();
            let d = samples_from_episodes(map, &episodes, a.stride, episode_id);
            episode_id += episodes.len() as u32;
            data.append(d);
            sources.push(format!("{} scenarios from {} on {}", scenarios.len(), dir.display(), a.twin[i].display()));
        }
    }
    let data_s = t0.elapsed().as_secs_f64();
    println!(
        "{} training pairs ({} vehicles) from {} in {:.1} s",
        data.len(),
        data.classes.iter().filter(|c| **c == swm_model::tokens::AgentClass::Vehicle).count(),
        sources.join("; "),
        data_s
    );

    let cfg = TrainConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        net: start.as_ref().map_or_else(|| a.net(), |n| n.config),
        ..TrainConfig::default()
    };
    let pb = rate_bar(quiet, 1, TRAIN_BAR);
    let stem = a.output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let dir = a.output.parent().map(Path::to_path_buf).unwrap_or_default();
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let ckpt = dir.join(format!("{stem}.ckpt.safetensors"));
    // Epochs are numbered on across the stages (the first training, then each round's).
    let epoch_base = std::cell::Cell::new(0usize);
    let mut on_event = |e: &TrainEvent| match e {
        TrainEvent::Step { step, total, loss } => {
            pb.set_length(*total as u64);
            pb.set_position(*step as u64);
            if step % 20 == 0 {
                pb.set_message(format!("loss {loss:.3}"));
            }
        }
        TrainEvent::Epoch(s) => say(
            &pb,
            format!(
                "epoch {:>2}: train loss {:.4}, val loss {:.4}, val top-1 vehicles {:.1} %, pedestrians {:.1} %",
                epoch_base.get() + s.epoch,
                s.train_loss,
                s.val_loss,
                100.0 * s.val_accuracy_vehicle,
                100.0 * s.val_accuracy_pedestrian
            ),
        ),
    };
    let mut checkpoint = |n: &Network, _: &EpochStats| n.save(&ckpt);
    let t1 = Instant::now();
    // Every stage's steps and epochs, numbered on (the loss plot and the report).
    let mut history = History::default();
    let mut network = match start {
        Some(n) if a.epochs == 0 => n,
        start => {
            let r = train_from(&data, &cfg, start.as_ref(), &mut on_event, &mut checkpoint)?;
            history.add(&r);
            epoch_base.set(history.epochs.len());
            r.network
        }
    };
    let mut rounds = Vec::new();
    for round in 1..=a.rollout_rounds {
        let jobs: Vec<(&swm_model::MapContext, Vec<(&swm_dataset::Scenario, u32)>)> =
            round_starts.iter().map(|(m, s)| (m, s.iter().map(|(sc, id)| (sc, *id)).collect())).collect();
        // The bar counts the round's rollouts, then its training steps.
        pb.set_length(jobs.iter().map(|j| j.1.len() as u64).sum());
        pb.set_position(0);
        pb.set_style(crate::commands::bar_style(ROUND_BAR));
        pb.set_message(format!("round {round}"));
        let rcfg = RolloutConfig {
            steps: 80,
            samples: 1,
            seed: a.seed.wrapping_mul(1000).wrapping_add(round as u64),
            sampling: SamplingConfig::default(),
        };
        let t_round = Instant::now();
        let mut found = swm_model::finetune::Corrections::default();
        for (map, starts) in &jobs {
            found.append(swm_model::finetune::mask_corrections(&network, map, starts, &rcfg, &|| pb.inc(1)));
        }
        say(
            &pb,
            format!(
                "round {round}: the masks replaced {} of {} sampled tokens ({:.2} %) on {} start states in {:.1} s",
                found.replaced,
                found.agent_steps,
                100.0 * found.replaced_fraction(),
                jobs.iter().map(|j| j.1.len()).sum::<usize>(),
                t_round.elapsed().as_secs_f64()
            ),
        );
        pb.set_position(0);
        pb.set_style(crate::commands::bar_style(TRAIN_BAR));
        pb.set_message(format!("round {round}"));
        let summary = serde_json::json!({
            "round": round,
            "agent_steps": found.agent_steps,
            "replaced": found.replaced,
            "replaced_fraction": found.replaced_fraction(),
        });
        data.append(found.data);
        let rcfg = TrainConfig { epochs: a.round_epochs, lr: a.round_lr, ..cfg.clone() };
        let r = train_from(&data, &rcfg, Some(&network), &mut on_event, &mut checkpoint)?;
        history.add(&r);
        epoch_base.set(history.epochs.len());
        rounds.push(serde_json::json!({ "collected": summary, "pairs": data.len(), "epochs": r.epochs }));
        network = r.network;
    }
    pb.finish_and_clear();
    let train_s = t1.elapsed().as_secs_f64();
    let best = history.epochs.get(history.best_epoch.saturating_sub(1)).cloned().unwrap_or_default();
    let info = serde_json::json!({
        "data": sources,
        "init": a.init.as_ref().map(|p| p.display().to_string()),
        "pairs": data.len(),
        "train_pairs": history.train_pairs,
        "val_pairs": history.val_pairs,
        "stride_frames": a.stride,
        "config": cfg,
        "best_epoch": history.best_epoch,
        "best": best,
        "epochs": history.epochs,
        "rollout_rounds": rounds,
        "round_config": { "epochs": a.round_epochs, "lr": a.round_lr, "start_states_per_district": a.round_scenarios },
        "data_seconds": data_s,
        "train_seconds": train_s,
        "code_version": env!("CARGO_PKG_VERSION"),
    });
    network.training = serde_json::to_string(&info)?;
    network.save(&a.output)?;
    std::fs::write(dir.join(format!("{stem}-training.json")), serde_json::to_string_pretty(&info)?)?;
    let png = dir.join(format!("{stem}-loss.png"));
    loss_plot(&png, &history.steps, &history.epochs, &history.epoch_end_steps)?;
    println!(
        "trained {} parameters in {:.1} s: best epoch {} (val loss {:.4}, val top-1 vehicles {:.1} %, pedestrians {:.1} %)",
        network.parameters(),
        train_s,
        history.best_epoch,
        best.val_loss,
        100.0 * best.val_accuracy_vehicle,
        100.0 * best.val_accuracy_pedestrian
    );
    println!("wrote {}, {}", a.output.display(), png.display());
    Ok(())
}

/// Every training stage's steps and epochs (the first training, then each rollout round's),
/// numbered on.
#[derive(Default)]
struct History {
    /// Training loss per step.
    steps: Vec<f64>,
    epochs: Vec<EpochStats>,
    /// The step count at the end of each epoch.
    epoch_end_steps: Vec<usize>,
    /// The epoch (1-based, numbered on) whose network the last stage chose.
    best_epoch: usize,
    /// The last stage's split.
    train_pairs: usize,
    val_pairs: usize,
}

impl History {
    fn add(&mut self, r: &TrainReport) {
        let base = self.epochs.len();
        let per = r.step_losses.len() / r.epochs.len().max(1);
        for (k, e) in r.epochs.iter().enumerate() {
            self.epochs.push(EpochStats { epoch: base + e.epoch, ..e.clone() });
            self.epoch_end_steps.push(self.steps.len() + (k + 1) * per);
        }
        self.steps.extend_from_slice(&r.step_losses);
        self.best_epoch = base + r.best_epoch;
        (self.train_pairs, self.val_pairs) = (r.train_pairs, r.val_pairs);
    }
}

/// Training loss per step (smoothed over 20 steps, blue) and validation loss per epoch
/// (orange, at the step count `epoch_end_steps` gives), with the loss on the vertical axis.
fn loss_plot(path: &Path, steps: &[f64], epochs: &[EpochStats], epoch_end_steps: &[usize]) -> Result<()> {
    const W: f32 = 800.0;
    const H: f32 = 480.0;
    const L: f32 = 70.0;
    const T: f32 = 44.0;
    const PW: f32 = W - L - 24.0;
    const PH: f32 = H - T - 56.0;
    let mut pm = Pixmap::new(W as u32, H as u32).context("allocating the loss plot")?;
    pm.fill(Color::WHITE);
    let smooth: Vec<f64> = (0..steps.len())
        .map(|i| {
            let lo = i.saturating_sub(19);
            steps[lo..=i].iter().sum::<f64>() / (i + 1 - lo) as f64
        })
        .collect();
    let y_max =
        smooth.iter().chain(epochs.iter().map(|e| &e.val_loss)).copied().filter(|v| v.is_finite()).fold(0.1, f64::max)
            * 1.1;
    let x_max = steps.len().max(1) as f64;
    let px = |x: f64, y: f64| (L + (x / x_max) as f32 * PW, T + PH - (y / y_max) as f32 * PH);
    let ink = [40, 40, 44];
    let stroke = |pm: &mut Pixmap, pts: &[(f32, f32)], rgb: [u8; 3], w: f32| {
        let mut pb = PathBuilder::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            if i == 0 { pb.move_to(x, y) } else { pb.line_to(x, y) }
        }
        if let Some(p) = pb.finish() {
            let mut paint = Paint::default();
            paint.set_color(Color::from_rgba8(rgb[0], rgb[1], rgb[2], 255));
            paint.anti_alias = true;
            pm.stroke_path(&p, &paint, &Stroke { width: w, ..Default::default() }, Transform::identity(), None);
        }
    };
    stroke(&mut pm, &[(L, T), (L, T + PH), (L + PW, T + PH)], ink, 1.0);
    for k in 0..=4 {
        let v = y_max * k as f64 / 4.0;
        let (_, y) = px(0.0, v);
        stroke(&mut pm, &[(L - 4.0, y), (L, y)], ink, 1.0);
        let s = format!("{v:.2}");
        draw_text(&mut pm, &s, L - 8.0 - text_width(&s, 2.0), y - 6.0, 2.0, ink);
    }
    let s = format!("{}", steps.len());
    draw_text(&mut pm, &s, L + PW - text_width(&s, 2.0), T + PH + 8.0, 2.0, ink);
    draw_text(&mut pm, "0", L, T + PH + 8.0, 2.0, ink);
    draw_text(&mut pm, "TRAINING LOSS (BLUE, PER STEP) AND VALIDATION LOSS (ORANGE, PER EPOCH)", L, 14.0, 1.6, ink);
    draw_text(&mut pm, "OPTIMISER STEP", L + PW / 2.0 - 60.0, H - 24.0, 2.0, ink);
    let pts: Vec<(f32, f32)> = smooth.iter().enumerate().map(|(i, &v)| px(i as f64, v)).collect();
    stroke(&mut pm, &pts, [52, 120, 200], 2.0);
    let val: Vec<(f32, f32)> = epochs
        .iter()
        .filter(|e| e.val_loss.is_finite())
        .zip(epoch_end_steps)
        .map(|(e, &s)| px(s as f64, e.val_loss))
        .collect();
    stroke(&mut pm, &val, [230, 140, 30], 2.5);
    let png = pm.encode_png().with_context(|| format!("encoding {}", path.display()))?;
    std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
}

pub fn rollout_cmd(a: RolloutArgs, quiet: bool) -> Result<()> {
    let model_path = a.model.clone().unwrap_or_else(swm_model::default_model_path);
    let net = Network::load(&model_path)?;
    let twin = load(&a.twin)?;
    let source = swm_dataset::scenario::scenario_source(&a.scenarios)?;
    if let Some(src) = &source {
        src.check_twin(&a.scenarios, &a.twin)?;
    }
    let signal_seed = a.signal_seed.or(source.as_ref().and_then(|s| s.seed));
    if signal_seed.is_none() {
        tracing::warn!(
            "no signal seed (--signal-seed, or the run's in {}): signals are held at their last recorded states",
            a.scenarios.join("index.json").display()
        );
    }
    let pb = crate::commands::progress(quiet, 3, "reading scenarios");
    let mut scenarios = read_scenario_dir(&a.scenarios)?;
    if let Some(n) = a.limit {
        scenarios.truncate(n);
    }
    pb.inc(1);
    pb.set_message("preparing the map");
    let map = MapContext::new(&twin, signal_seed)?;
    pb.inc(1);
    pb.set_message("rolling out");
    let cfg = RolloutConfig {
        steps: a.steps,
        samples: a.samples,
        seed: a.seed,
        sampling: SamplingConfig { temperature: a.temperature, top_k: a.top_k, top_p: a.top_p },
    };
    let mask = feasibility_mask(&a.masks);
    let t0 = Instant::now();
    let rollouts = if a.backend == "gpu" {
        let ctx = swm_gpu::GpuContext::new(swm_gpu::AdapterPreference::Auto)?;
        tracing::info!(adapter = ?ctx.adapter(), "GPU rollout");
        let gnet = swm_gpu::GpuNetwork::new(&ctx, &net)?;
        swm_gpu::rollout_scenarios_gpu_masked(&ctx, &gnet, &map, &scenarios, &cfg, None, mask)?
    } else {
        swm_model::rollout::rollout_scenarios_masked(&net, &map, &scenarios, &cfg, None, mask)
    };
    let wall_s = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let agent_steps: usize = rollouts.iter().flat_map(|r| r.samples.iter()).map(|s| s.len()).sum();
    let manifest = RolloutManifest {
        format: String::new(),
        model: model_path.display().to_string(),
        twin: twin.meta.name.clone(),
        config: cfg,
        signal_seed,
        scenarios: 0,
        files: Vec::new(),
        mask,
    };
    let files = write_rollouts(&a.output, &rollouts, manifest)?;
    println!(
        "rolled out {} scenarios x {} samples x {} steps ({} agent-steps) in {:.2} s: {:.0} agent-steps/s",
        scenarios.len(),
        a.samples,
        a.steps,
        agent_steps,
        wall_s,
        agent_steps as f64 / wall_s.max(1e-9)
    );
    println!("wrote {} files into {}", files.len() + 1, a.output.display());
    Ok(())
}
