//! Robots that plan in imagination (issue 7).
//!
//! A robotics team drops its robot into a twin of a real Seoul district, lets the world
//! model imagine how the city will move around it, and plans through those futures.
//!
//! * [`robot`]: robot kinds with honest dynamics and limits: a sidewalk delivery robot
//!   (differential drive) and an autonomous car (kinematic bicycle); the drone is in
//!   [`drone`];
//! * [`route`]: A* on the walk graph and the lane graph;
//! * [`scene`]: a twin prepared for robots (index, graphs, walkable area) and loading one;
//! * [`mod@env`]: the gym-like environment (`reset(seed)`, `step(action)`), its observation and
//!   action spec, [`env::VecEnv`] for many at once, and the [`env::Controller`] trait to
//!   bring one's own controller. The other agents are the teacher simulator's (ground
//!   truth); they react to the robot, handed to the simulator as an external agent every
//!   step (see the module docs);
//! * [`planner`]: MPPI through futures sampled from the world model conditioned on the
//!   robot's plan, and the constant-velocity baseline;
//! * `gpu` (feature `gpu`): the same world-model futures on the GPU engine (`swm_gpu`).
//!
//! **Determinism**: one `u64` seed decides an episode (the simulation, the start and goal,
//! the planner's noise and the world model's draws are keyed by it); vectorised stepping
//! gives the same bytes whatever the thread count.

pub mod drone;
pub mod env;
pub mod error;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod planner;
pub mod robot;
pub mod route;
pub mod scene;

pub use env::{Controller, Env, EnvConfig, Observation, Outcome, Step, VecEnv};
pub use error::RobotError;
pub use planner::{ConstantVelocity, MppiPlanner, PlannerConfig, WorldModel};
pub use robot::{Action, RobotKind, RobotParams, RobotState};
pub use scene::{Scene, load_twin};
