//! Bring your own controller: a hand-written delivery-robot controller that sees only the
//! documented observation (no privileged access), plugged into the gym-like API through the
//! `Controller` trait and run for a few seeded episodes next to the built-in
//! constant-velocity MPPI baseline.
//!
//! ```sh
//! cargo run --example byo_controller                     # the embedded default district
//! cargo run --example byo_controller -- yeouido.swt      # a twin (.swt) or an OSM file
//! ```
//!
//! The controller: steer towards the route point 2 m ahead (pure pursuit in the robot
//! frame), cruise at 1.3 m/s, and slow to a stop when an observed agent is inside a
//! corridor 0.8 m either side of the robot's path within a distance that grows with speed.

use std::sync::Arc;

use anyhow::Result;
use swm::robots::env::{Controller, Env, EnvConfig, Observation, run_episode};
use swm::robots::planner::{ConstantVelocity, MppiPlanner, PlannerConfig};
use swm::robots::{Action, RobotKind, Scene, load_twin};

/// A controller that reads only the observation.
struct Cautious {
    cruise_mps: f64,
}

impl Controller for Cautious {
    fn name(&self) -> String {
        "byo-cautious".into()
    }

    fn act(&mut self, env: &Env, obs: &Observation) -> Action {
        let p = env.config().robot;
        let v = obs.state.speed_mps;
        // Pure pursuit on the first route point (2 m ahead), robot frame: x forward, y left.
        let target = obs.route_ahead_robot_m[0];
        let d2 = (target[0] * target[0] + target[1] * target[1]).max(1e-6);
        let yaw_rate = (2.0 * target[1] / d2 * v.max(0.5)).clamp(-p.max_yaw_rate_radps, p.max_yaw_rate_radps);
        // Anything in the corridor ahead?
        let look_m = 1.5 + 2.0 * v;
        let blocked = obs.neighbours.iter().any(|n| {
            let reach = 0.5 * n.width_m.max(n.length_m);
            n.point_robot_m[0] > 0.0 && n.point_robot_m[0] < look_m + reach && n.point_robot_m[1].abs() < 0.8 + reach
        });
        let want = if blocked { 0.0 } else { self.cruise_mps.min(obs.route_remaining_m) };
        Action { accel_mps2: (want - v) / 0.5, turn: yaw_rate }
    }
}

fn main() -> Result<()> {
    let path = std::env::args().nth(1);
    let twin = load_twin(path.as_deref().map(std::path::Path::new))?;
    let scene = Arc::new(Scene::new(Arc::new(twin)));
    let config = EnvConfig { max_route_m: 70.0, max_episode_s: 60.0, ..EnvConfig::delivery() };
    let mut env = Env::new(scene, config)?;
    let mut mine = Cautious { cruise_mps: 1.3 };
    let mut baseline = MppiPlanner::new(
        PlannerConfig { candidates: 48, ..PlannerConfig::of(RobotKind::Delivery) },
        Box::new(ConstantVelocity::default()),
    );
    println!("{:<28} {:>5} {:>10} {:>8} {:>8} {:>9}", "controller", "seed", "outcome", "time s", "route m", "return");
    for seed in 1..=3 {
        for c in [&mut mine as &mut dyn Controller, &mut baseline] {
            let s = run_episode(&mut env, c, seed, &mut |_, _, _| {})?;
            println!(
                "{:<28} {:>5} {:>10} {:>8.1} {:>8.1} {:>9.2}",
                c.name(),
                seed,
                format!("{:?}", s.outcome),
                s.time_s,
                s.route_length_m,
                s.return_sum
            );
        }
    }
    Ok(())
}
