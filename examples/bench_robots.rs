//! Measured outcome of planning in imagination: many seeded episodes of the delivery robot
//! or the car on a twin, with the world-model MPPI planner and with the constant-velocity
//! baseline (the same MPPI, costs and budget; only the prediction differs). Prints one JSON
//! line per episode and a summary line per planner: success, collision (and how many of
//! them the robot was struck while stopped or from behind), timeout rates, mean time to
//! goal of the successes, planning time per step. `scripts/bench-robots.sh` runs it on the
//! real Yeouido and Jamsil twins.
//!
//! ```sh
//! cargo run --release --example bench_robots -- [TWIN|-] [delivery|car] [EPISODES] [FIRST_SEED] [wm,cv] [teacher|model]
//! ```
//! The last argument picks the world: the teacher simulation (default), or the world model
//! moving every other agent (`Env::with_model_world`).

use std::sync::Arc;

use anyhow::{Result, bail};
use rayon::prelude::*;
use swm::model::{MapContext, Network};
use swm::robots::env::{Env, EnvConfig, EpisodeSummary, Outcome, run_episode};
use swm::robots::planner::{ConstantVelocity, MppiPlanner, PlannerConfig, Predictor, WorldModel};
use swm::robots::{RobotKind, Scene, load_twin};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().filter(|a| *a != "-").cloned();
    let kind = match args.get(1).map(String::as_str).unwrap_or("delivery") {
        "delivery" => RobotKind::Delivery,
        "car" => RobotKind::Car,
        k => bail!("unknown robot kind {k} (delivery or car)"),
    };
    let episodes: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let first_seed: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let planners: Vec<String> = args.get(4).map_or("wm,cv", String::as_str).split(',').map(str::to_string).collect();
    let model_world = match args.get(5).map_or("teacher", String::as_str) {
        "teacher" => false,
        "model" => true,
        w => bail!("unknown world {w} (teacher or model)"),
    };
    let t_load = std::time::Instant::now();
    let twin = load_twin(path.as_deref().map(std::path::Path::new))?;
    let name = twin.meta.name.clone();
    let scene = Arc::new(Scene::new(Arc::new(twin)));
    let net = Arc::new(Network::load(&swm::model::default_model_path())?);
    let map = Arc::new(MapContext::new(&scene.twin, None)?);
    eprintln!("{name}: loaded in {:.1} s", t_load.elapsed().as_secs_f64());
    let config = EnvConfig::of(kind).rush_hour();
    for planner_name in &planners {
        let t0 = std::time::Instant::now();
        let results: Vec<Result<EpisodeSummary, swm::robots::RobotError>> = (first_seed..first_seed + episodes)
            .into_par_iter()
            .map(|seed| {
                let predictor: Box<dyn Predictor> = match planner_name.as_str() {
                    "wm" => Box::new(WorldModel::new(net.clone(), map.clone())),
                    _ => Box::new(ConstantVelocity::default()),
                };
                let mut planner = MppiPlanner::new(PlannerConfig::of(kind), predictor);
                let mut env = Env::new(scene.clone(), config.clone())?;
                if model_world {
                    env = env.with_model_world(net.clone(), map.clone());
                }
                run_episode(&mut env, &mut planner, seed, &mut |_, _, _| {})
            })
            .collect();
        let mut rows = Vec::new();
        for r in results {
            let s = r?;
            println!(
                "{}",
                serde_json::json!({"twin": name, "robot": kind.as_str(), "planner": planner_name, "world": if model_world { "model" } else { "teacher" }, "episode": s})
            );
            rows.push(s);
        }
        let n = rows.len().max(1) as f64;
        let count = |o: Outcome| rows.iter().filter(|s| s.outcome == o).count() as f64;
        let succ: Vec<&EpisodeSummary> = rows.iter().filter(|s| s.outcome == Outcome::Success).collect();
        let struck = rows.iter().filter(|s| s.outcome == Outcome::Collision && s.struck).count();
        let steps: u32 = rows.iter().map(|s| s.steps).sum();
        let ctrl: f64 = rows.iter().map(|s| s.controller_wall_s).sum();
        println!(
            "{}",
            serde_json::json!({
                "summary": true, "twin": name, "robot": kind.as_str(), "planner": planner_name,
                "world": if model_world { "model" } else { "teacher" },
                "episodes": rows.len(),
                "success_rate": count(Outcome::Success) / n,
                "collision_rate": count(Outcome::Collision) / n,
                "collisions_struck": struck,
                "timeout_rate": count(Outcome::Timeout) / n,
                "mean_time_to_goal_s": if succ.is_empty() { f64::NAN } else { succ.iter().map(|s| s.time_s).sum::<f64>() / succ.len() as f64 },
                "red_violations": rows.iter().map(|s| s.red_violations).sum::<u32>(),
                "planning_ms_per_step": 1e3 * ctrl / f64::from(steps.max(1)),
                "wall_s": t0.elapsed().as_secs_f64(),
            })
        );
    }
    Ok(())
}
