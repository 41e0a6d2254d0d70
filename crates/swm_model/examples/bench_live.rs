//! Benchmark of the world model driving a whole district, as the viewer's model traffic
//! does: the teacher fills the embedded procedural district with `VEHICLES` vehicles and
//! `PEDESTRIANS` pedestrians for 30 s, then one [`LiveRollout`] (every agent in one
//! scenario, with the feasibility masks) advances them `STEPS` frames, on rayon's threads
//! (`RAYON_NUM_THREADS=1`: one).
//! Prints the agents, the frame time, agent-steps per second and a fingerprint of every
//! record (unchanged by optimisations that keep the rollout bit for bit), then the teacher's
//! own step time on the same district, continuing from the same state, for scale.
//!
//! ```sh
//! cargo run --release -p swm_model --example bench_live -- VEHICLES PEDESTRIANS [STEPS] [MODEL]
//! ```

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use swm_model::{LiveRollout, MapContext, Network, SamplingConfig};
use swm_sim::{SimConfig, Simulation, TrajectoryRecord};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, name: &str, default: u32| -> anyhow::Result<u32> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| {
                anyhow::anyhow!(
                    "{name} {s:?}: not a whole number ({e}); usage: bench_live VEHICLES PEDESTRIANS [STEPS] [MODEL]"
                )
            })
        })
    };
    let (vehicles, pedestrians, steps) = (arg(0, "VEHICLES", 300)?, arg(1, "PEDESTRIANS", 200)?, arg(2, "STEPS", 50)?);
    let model = args.get(3).map(std::path::PathBuf::from).unwrap_or_else(swm_model::default_model_path);
    let net = Network::load(&model)?;
    let params = swm_procgen::DistrictParams::embedded_default();
    let (twin, _) = swm_procgen::build_district(&params)?;
    let twin = Arc::new(twin);
    let seed = 1;
    let config = SimConfig { seed, vehicles, pedestrians, duration_s: 0.0, record_every_steps: 1, density: 1.0 };
    let mut sim = Simulation::new(twin.clone(), config)?;
    let mut history: std::collections::VecDeque<Vec<TrajectoryRecord>> = Default::default();
    for _ in 0..300 {
        sim.step();
        history.push_back(sim.records());
        if history.len() > swm_model::features::HISTORY_STEPS + 1 {
            history.pop_front();
        }
    }
    let history: Vec<Vec<TrajectoryRecord>> = history.into();
    let map = MapContext::new(&twin, Some(seed))?;
    let mut live = LiveRollout::from_history(&history, &map, seed, SamplingConfig::default());
    let agents = live.agents.len();
    let (mut out, mut records) = (Vec::new(), 0usize);
    let mut fp = std::collections::hash_map::DefaultHasher::new();
    let t = Instant::now();
    for _ in 0..steps {
        out.clear();
        live.step(&net, &map, None, &mut out);
        records += out.len();
        for (f, r) in &out {
            (f, r.agent_id, r.x_m.to_bits(), r.y_m.to_bits(), r.heading_rad.to_bits(), r.speed_mps.to_bits())
                .hash(&mut fp);
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "live rollout of the district, {agents} agents, {steps} frames ({} threads): {:.2} ms per frame, {:.0} agent-steps/s, fingerprint {:016x}",
        rayon::current_num_threads(),
        1e3 * s / f64::from(steps.max(1)),
        records as f64 / s,
        fp.finish()
    );
    // The teacher on the same district, continuing from the same state, for scale: the
    // viewer runs one or the other.
    let (t, mut teacher_records) = (Instant::now(), 0usize);
    for _ in 0..steps {
        sim.step();
        teacher_records += sim.records().len();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "teacher on the same district, {steps} steps (1 thread): {:.2} ms per step, {:.0} agent-steps/s",
        1e3 * s / f64::from(steps.max(1)),
        teacher_records as f64 / s
    );
    Ok(())
}
