//! A batch of environments for reinforcement learning: a `VecEnv` of delivery robots
//! stepped together (rayon; the same bytes whatever the thread count), auto-reset when an
//! episode ends, driven by a random policy (a Gaussian around "go along the route", drawn
//! from the keyed counter-based generator), reporting the returns of the finished episodes
//! and the observation vector an RL library would take.
//!
//! ```sh
//! cargo run --example rl_batch                          # the embedded default district
//! cargo run --example rl_batch -- jamsil.osm.pbf 16     # a twin or OSM file, 16 envs
//! ```

use std::sync::Arc;

use anyhow::Result;
use swm::core::rng::CounterRng;
use swm::robots::env::{EnvConfig, Observation, VecEnv};
use swm::robots::{Action, Scene, load_twin};

fn normal(rng: &mut CounterRng) -> f64 {
    let (u1, u2) = (rng.next_f64().max(1e-12), rng.next_f64());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().filter(|a| a != "-");
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let twin = load_twin(path.as_deref().map(std::path::Path::new))?;
    let scene = Arc::new(Scene::new(Arc::new(twin)));
    let config = EnvConfig { max_episode_s: 20.0, warmup_s: 10.0, ..EnvConfig::delivery() };
    let max_neighbours = config.max_neighbours;
    let params = config.robot;
    let mut envs = VecEnv::new(scene, config, n)?;
    let mut obs: Vec<Observation> = envs.reset(1000)?;
    println!("{n} environments; observation vector: {} floats", Observation::flat_len(max_neighbours));
    let mut rng = CounterRng::new(42, 1);
    let mut returns = vec![0.0; n];
    let mut finished: Vec<(usize, f64, String)> = Vec::new();
    let steps = 300;
    let t0 = std::time::Instant::now();
    for _ in 0..steps {
        // The policy: steer at the first route point, random acceleration and yaw noise.
        let actions: Vec<Action> = obs
            .iter()
            .map(|o| {
                let t = o.route_ahead_robot_m[0];
                let yaw = 2.0 * t[1] / (t[0] * t[0] + t[1] * t[1]).max(1e-6) * o.state.speed_mps.max(0.5);
                Action { accel_mps2: 0.4 + 0.8 * normal(&mut rng), turn: yaw + 0.3 * normal(&mut rng) }
            })
            .collect();
        let out = envs.step(&actions)?;
        for (i, st) in out.iter().enumerate() {
            returns[i] += st.reward;
            if st.done {
                finished.push((i, returns[i], format!("{:?}", st.info.outcome.expect("done has an outcome"))));
                returns[i] = 0.0;
            }
        }
        obs = envs.observe()?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let _ = params;
    println!("{steps} batch steps in {wall:.1} s: {:.0} env-steps/s", (steps * n) as f64 / wall);
    println!("{} episodes finished:", finished.len());
    for (i, r, o) in &finished {
        println!("  env {i:>2}: return {r:>8.2} ({o})");
    }
    if !finished.is_empty() {
        let mean = finished.iter().map(|f| f.1).sum::<f64>() / finished.len() as f64;
        println!("mean return {mean:.2}");
    }
    let first = obs[0].flat(max_neighbours);
    println!("env 0 observation (first 12 of {}): {:?}", first.len(), &first[..12]);
    Ok(())
}
