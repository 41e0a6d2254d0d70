//! Robots that plan in imagination (issue 7).
//!
//! Robot kinds with honest dynamics and limits, global routes, local planning through futures
//! sampled from the world model, and a gym-like API.

pub mod drone;
pub mod error;

pub use error::RobotError;
