//! Times the teacher's step loop on a twin and prints a checksum of every recorded pose: the
//! tool for making the simulator faster without changing what it does (same checksum
//! before and after, on several twins and seeds).
//!
//! ```sh
//! cargo run --release -p swm_sim --example step_speed -- TWIN.swt [SECONDS] [SEED] [VEHICLES]
//! METRICS=1 cargo run ...   # also feed a MetricsAccumulator, as `swm simulate` does
//! ```
//!
//! The time excludes the per-step callback (the checksum and, with `METRICS=1`, the metrics),
//! like `swm simulate`'s `vehicle_updates_per_s`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use swm_sim::metrics::MetricsAccumulator;
use swm_sim::{SimConfig, Simulation};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> Result<T, String> {
    args.get(i).map_or(Ok(default), |s| s.parse().map_err(|_| format!("argument {i}: cannot parse {s:?}")))
}

fn run(args: &[String]) -> Result<(), String> {
    let path = args.get(1).ok_or("usage: step_speed TWIN.swt [SECONDS] [SEED] [VEHICLES]")?;
    let twin = Arc::new(swm_twin::read_swt(Path::new(path)).map_err(|e| format!("{path}: {e}"))?);
    let config = SimConfig {
        seed: arg(args, 3, 1)?,
        vehicles: arg(args, 4, 300)?,
        pedestrians: 0,
        duration_s: arg(args, 2, 600.0)?,
        record_every_steps: 1,
        density: 1.0,
    };
    let mut metrics = std::env::var_os("METRICS").map(|_| MetricsAccumulator::new(&twin));
    let mut sim = Simulation::new(twin.clone(), config.clone()).map_err(|e| format!("{path}: {e}"))?;
    let (mut hash, mut updates, mut callback_s) = (0xcbf2_9ce4_8422_2325u64, 0u64, 0.0);
    let t0 = Instant::now();
    sim.run(config.steps(), &mut |step, records| {
        let t = Instant::now();
        if let Some(m) = metrics.as_mut() {
            m.push_step(step, records);
        }
        for r in records {
            for x in [r.agent_id, r.x_m.to_bits(), r.y_m.to_bits(), r.heading_rad.to_bits(), r.speed_mps.to_bits()] {
                hash = (hash ^ x).wrapping_mul(0x0100_0000_01b3);
            }
            updates += 1;
        }
        callback_s += t.elapsed().as_secs_f64();
    });
    let loop_s = t0.elapsed().as_secs_f64() - callback_s;
    println!(
        "{updates} vehicle updates in {loop_s:.3} s: {:.0} updates/s (callback {callback_s:.3} s); checksum {hash:016x}",
        updates as f64 / loop_s
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("step_speed: {e}");
            ExitCode::FAILURE
        }
    }
}
