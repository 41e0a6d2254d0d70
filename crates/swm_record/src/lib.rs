//! `swm_record`: robot logs a robotics team can open.
//!
//! * [`McapLog`]: an [MCAP](https://mcap.dev) file with [Foxglove](https://foxglove.dev)
//!   schemas, JSON-encoded (`jsonschema` schemas, `json` messages), which Foxglove Studio opens
//!   as is: the robot's pose (`foxglove.PoseInFrame` and a `foxglove.FrameTransform` on
//!   `/tf`), lidar point clouds (`foxglove.PointCloud`, packed little-endian `float64` x, y, z,
//!   base64 in the JSON), planned and candidate paths and the other agents' boxes
//!   (`foxglove.SceneUpdate` with line and cube primitives), outlines of the twin.
//! * [`ParquetLog`]: the same records as plain tables (`poses`, `points`, `paths`, `agents`)
//!   in one directory, for pandas/polars/DuckDB.
//!
//! # Frames, units, time
//!
//! Everything is in the twin frame, called [`MAP_FRAME`] (`"map"`): `x` east, `y` north, `z`
//! up, metres; yaw counter-clockwise from east, pitch positive nose-down, roll about the
//! forward axis (FLU body frame, REP 103); radians. Times are nanoseconds since the start of
//! the run (`t_ns`), written as MCAP log and publish times and as Foxglove `{sec, nsec}`.
//!
//! # Determinism
//!
//! The same calls give the same bytes: no wall-clock time is written, the MCAP library string
//! is fixed, channels and schemas get ids in first-use order, and Parquet writer properties are
//! fixed.

pub mod error;
pub mod mcap_log;
pub mod parquet_log;
pub mod records;

pub use error::RecordError;
pub use mcap_log::{McapLog, McapSummary};
pub use parquet_log::{ParquetLog, ParquetSummary};
pub use records::{AgentRecord, Pose3};

/// The name of the twin frame in logs.
pub const MAP_FRAME: &str = "map";
