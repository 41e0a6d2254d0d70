//! `swm_sensors`: what a robot's sensors see of a twin.
//!
//! * [`mesh`]: the twin's static surfaces as triangles ([`StaticMesh::from_twin`]): building
//!   walls from `min_height_m` up to the eaves, flat or pyramidal roofs, the undersides of
//!   raised volumes, and the terrain (the DEM grid as two triangles per cell, or a flat plane).
//! * [`bvh`]: a bounding-volume hierarchy over those triangles (binned SAH, built once) with
//!   Möller–Trumbore ray–triangle tests.
//! * [`lidar`]: 2-D and 3-D spinning lidars ([`LidarConfig`]: channels, beams, fields of view,
//!   range, Gaussian range noise, dropout) cast by [`LidarScene::scan`] against the mesh and the
//!   other agents' oriented boxes ([`AgentBox`]), beams in parallel with rayon.
//! * [`bev`]: a robot-centred bird's-eye-view crop of the twin's semantic classes with the
//!   agents' boxes painted in.
//! * [`ply`]: point clouds as binary little-endian PLY files, written and read back.
//!
//! # Frames and units
//!
//! The twin frame (ENU): `x` east, `y` north, `z` elevation above sea level, metres. The
//! sensor frame is FLU (REP 103): `x` forward, `y` left, `z` up. A [`SensorPose`] places the
//! sensor with yaw about `z` (counter-clockwise from east), then pitch about the sensor's `y`
//! (positive tilts the nose **down**), then roll about its `x`:
//! `enu_from_sensor = Rz(yaw) · Ry(pitch) · Rx(roll)`. Angles in radians.
//!
//! # Determinism
//!
//! A scan is a pure function of the scene, the configuration, the pose, the agents, the seed
//! and the scan index: each beam's noise comes from Philox4x32-10 keyed by the seed with the
//! counter `(beam, scan_index, stream)`, so the bytes are the same whatever the thread count.

// Geometry code indexes several 3-vectors with one axis counter.
#![allow(clippy::needless_range_loop)]

pub mod bev;
pub mod bvh;
pub mod error;
pub mod lidar;
pub mod mesh;
pub mod ply;

pub use bev::{BevConfig, BevCrop, bev_crop};
pub use error::SensorError;
pub use lidar::{AgentBox, Hit, LidarConfig, LidarScan, LidarScene, RayHit, SensorPose};
pub use mesh::{StaticMesh, Surface};
