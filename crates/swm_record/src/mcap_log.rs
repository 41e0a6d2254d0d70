//! MCAP logs with Foxglove schemas (JSON encoding).
//!
//! Topics written by the `log_*` methods (a topic keeps the schema it was first used with):
//!
//! | method | topic | schema |
//! | --- | --- | --- |
//! | [`McapLog::log_pose`] | `/{frame}/pose` and `/tf` | `foxglove.PoseInFrame`, `foxglove.FrameTransform` (`map` → `frame`) |
//! | [`McapLog::log_lidar`] | `/lidar` | `foxglove.PointCloud` |
//! | [`McapLog::log_point_cloud`] | any | `foxglove.PointCloud` |
//! | [`McapLog::log_path`], [`McapLog::log_paths`] | any (`/plan`, `/plan/candidates`) | `foxglove.SceneUpdate` (line strips) |
//! | [`McapLog::log_agents`] | `/agents` | `foxglove.SceneUpdate` (cubes) |
//! | [`McapLog::log_outlines`] | any (`/twin/buildings`) | `foxglove.SceneUpdate` (line loops) |
//!
//! Each `SceneUpdate` holds one entity per topic (id = the topic), replaced by the next
//! message on that topic, so agents that left and candidate plans that were dropped vanish.
//! Point clouds are packed `float64` `x, y, z` (24-byte stride) in the `map` frame with an
//! identity pose, base64-encoded in the JSON as Foxglove's JSON encoding requires for bytes.
//! Schemas are JSON Schemas carrying Foxglove's field names and types.

use crate::MAP_FRAME;
use crate::error::RecordError;
use crate::records::{AgentRecord, Pose3, points_finite};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Foxglove's `NumericType.FLOAT64`.
pub const FOXGLOVE_FLOAT64: u64 = 8;
/// Foxglove's `LinePrimitive` types.
const LINE_STRIP: u64 = 0;
const LINE_LOOP: u64 = 1;

/// Colour of [`McapLog::log_path`] lines (RGBA, 0–1).
pub const PLAN_COLOR: [f64; 4] = [0.1, 0.9, 0.2, 1.0];
/// Colour of agents' cubes.
pub const AGENT_COLOR: [f64; 4] = [0.95, 0.55, 0.1, 0.8];

/// Counts of what a log holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct McapSummary {
    /// Messages written.
    pub messages: u64,
    /// `topic → (schema name, messages)`.
    pub channels: BTreeMap<String, (String, u64)>,
}

/// An MCAP file being written; see the module docs. Call [`McapLog::finish`] to write the
/// summary section (a log dropped without it is finished on a best-effort basis).
pub struct McapLog {
    writer: Option<mcap::Writer<BufWriter<File>>>,
    path: PathBuf,
    schemas: BTreeMap<&'static str, u16>,
    /// topic → (channel id, schema name, next sequence number).
    channels: BTreeMap<String, (u16, &'static str, u32)>,
    messages: u64,
}

impl std::fmt::Debug for McapLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McapLog").field("path", &self.path).field("messages", &self.messages).finish_non_exhaustive()
    }
}

fn time(t_ns: u64) -> Value {
    json!({ "sec": t_ns / 1_000_000_000, "nsec": t_ns % 1_000_000_000 })
}

fn vec3(p: [f64; 3]) -> Value {
    json!({ "x": p[0], "y": p[1], "z": p[2] })
}

fn quat(q: [f64; 4]) -> Value {
    json!({ "x": q[0], "y": q[1], "z": q[2], "w": q[3] })
}

fn pose_json(p: [f64; 3], q: [f64; 4]) -> Value {
    json!({ "position": vec3(p), "orientation": quat(q) })
}

fn color(c: [f64; 4]) -> Value {
    json!({ "r": c[0], "g": c[1], "b": c[2], "a": c[3] })
}

const IDENTITY: [f64; 4] = [0.0, 0.0, 0.0, 1.0];

impl McapLog {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, RecordError> {
        let file = File::create(path).map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
        let options = mcap::WriteOptions::new()
            .compression(None)
            .profile("")
            .library(concat!("swm_record ", env!("CARGO_PKG_VERSION")));
        let writer = options
            .create(BufWriter::new(file))
            .map_err(|e| RecordError::Mcap { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(Self {
            writer: Some(writer),
            path: path.to_path_buf(),
            schemas: BTreeMap::new(),
            channels: BTreeMap::new(),
            messages: 0,
        })
    }

    fn mcap_err(&self, e: mcap::McapError) -> RecordError {
        RecordError::Mcap { path: self.path.clone(), message: e.to_string() }
    }

    /// Writes one JSON message on `topic` (created with `schema` on first use).
    fn write_json(&mut self, t_ns: u64, topic: &str, schema: &'static str, message: &Value) -> Result<(), RecordError> {
        if topic.is_empty() {
            return Err(RecordError::InvalidRecord { topic: topic.into(), reason: "empty topic".into() });
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(RecordError::Mcap { path: self.path.clone(), message: "log already finished".into() });
        };
        let (channel_id, sequence) = match self.channels.get_mut(topic) {
            Some((id, s, seq)) => {
                if *s != schema {
                    return Err(RecordError::InvalidRecord {
                        topic: topic.into(),
                        reason: format!("the topic carries {s}, not {schema}"),
                    });
                }
                *seq += 1;
                (*id, *seq - 1)
            }
            None => {
                let schema_id = match self.schemas.get(schema) {
                    Some(id) => *id,
                    None => {
                        let data = serde_json::to_vec(&schema_json(schema)).unwrap_or_default();
                        let id = writer
                            .add_schema(schema, "jsonschema", &data)
                            .map_err(|e| RecordError::Mcap { path: self.path.clone(), message: e.to_string() })?;
                        self.schemas.insert(schema, id);
                        id
                    }
                };
                let id = writer
                    .add_channel(schema_id, topic, "json", &BTreeMap::new())
                    .map_err(|e| RecordError::Mcap { path: self.path.clone(), message: e.to_string() })?;
                self.channels.insert(topic.to_string(), (id, schema, 1));
                (id, 0)
            }
        };
        let data = serde_json::to_vec(message).unwrap_or_default();
        let header = mcap::records::MessageHeader { channel_id, sequence, log_time: t_ns, publish_time: t_ns };
        let result = writer.write_to_known_channel(&header, &data);
        result.map_err(|e| self.mcap_err(e))?;
        self.messages += 1;
        Ok(())
    }

    /// The pose of body frame `frame` (e.g. `"drone"`) in the map: a `foxglove.PoseInFrame`
    /// on `/{frame}/pose` and a `foxglove.FrameTransform` `map → frame` on `/tf`.
    pub fn log_pose(&mut self, t_ns: u64, frame: &str, pose: &Pose3) -> Result<(), RecordError> {
        if !pose.is_finite() || frame.is_empty() {
            return Err(RecordError::InvalidRecord {
                topic: format!("/{frame}/pose"),
                reason: format!("frame `{frame}` with pose {pose:?} (needs a name and finite numbers)"),
            });
        }
        let q = pose.quaternion_xyzw();
        let msg = json!({ "timestamp": time(t_ns), "frame_id": MAP_FRAME, "pose": pose_json(pose.position_enu, q) });
        self.write_json(t_ns, &format!("/{frame}/pose"), "foxglove.PoseInFrame", &msg)?;
        let tf = json!({
            "timestamp": time(t_ns),
            "parent_frame_id": MAP_FRAME,
            "child_frame_id": frame,
            "translation": vec3(pose.position_enu),
            "rotation": quat(q),
        });
        self.write_json(t_ns, "/tf", "foxglove.FrameTransform", &tf)
    }

    /// A lidar scan's returns in the map frame on `/lidar`.
    pub fn log_lidar(&mut self, t_ns: u64, points_enu: &[[f64; 3]]) -> Result<(), RecordError> {
        self.log_point_cloud(t_ns, "/lidar", points_enu)
    }

    /// A point cloud in the map frame on `topic`.
    pub fn log_point_cloud(&mut self, t_ns: u64, topic: &str, points_enu: &[[f64; 3]]) -> Result<(), RecordError> {
        if !points_finite(points_enu) {
            return Err(RecordError::InvalidRecord { topic: topic.into(), reason: "a point is not finite".into() });
        }
        let mut bytes = Vec::with_capacity(points_enu.len() * 24);
        for p in points_enu {
            for v in p {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let fields: Vec<Value> = ["x", "y", "z"]
            .iter()
            .enumerate()
            .map(|(i, n)| json!({ "name": n, "offset": 8 * i, "type": FOXGLOVE_FLOAT64 }))
            .collect();
        let msg = json!({
            "timestamp": time(t_ns),
            "frame_id": MAP_FRAME,
            "pose": pose_json([0.0; 3], IDENTITY),
            "point_stride": 24,
            "fields": fields,
            "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
        });
        self.write_json(t_ns, topic, "foxglove.PointCloud", &msg)
    }

    /// One planned path (a green line strip) on `topic`.
    pub fn log_path(&mut self, t_ns: u64, topic: &str, points_enu: &[[f64; 3]]) -> Result<(), RecordError> {
        self.log_paths(t_ns, topic, &[points_enu.to_vec()], PLAN_COLOR)
    }

    /// Several paths (candidate plans) as line strips of one colour (RGBA, 0–1) on `topic`.
    pub fn log_paths(
        &mut self,
        t_ns: u64,
        topic: &str,
        paths: &[Vec<[f64; 3]>],
        rgba: [f64; 4],
    ) -> Result<(), RecordError> {
        self.log_lines(t_ns, topic, paths, rgba, LINE_STRIP, 0.1)
    }

    /// Closed outlines (for example buildings' footprints at roof height) as line loops.
    pub fn log_outlines(
        &mut self,
        t_ns: u64,
        topic: &str,
        rings: &[Vec<[f64; 3]>],
        rgba: [f64; 4],
    ) -> Result<(), RecordError> {
        self.log_lines(t_ns, topic, rings, rgba, LINE_LOOP, 0.05)
    }

    fn log_lines(
        &mut self,
        t_ns: u64,
        topic: &str,
        lines: &[Vec<[f64; 3]>],
        rgba: [f64; 4],
        kind: u64,
        thickness_m: f64,
    ) -> Result<(), RecordError> {
        if lines.iter().any(|l| !points_finite(l)) || !rgba.iter().all(|v| v.is_finite()) {
            return Err(RecordError::InvalidRecord {
                topic: topic.into(),
                reason: "a point or the colour is not finite".into(),
            });
        }
        let prims: Vec<Value> = lines
            .iter()
            .map(|l| {
                json!({
                    "type": kind,
                    "pose": pose_json([0.0; 3], IDENTITY),
                    "thickness": thickness_m,
                    "scale_invariant": false,
                    "points": l.iter().map(|p| vec3(*p)).collect::<Vec<_>>(),
                    "color": color(rgba),
                    "colors": [],
                    "indices": [],
                })
            })
            .collect();
        let msg = scene_update(t_ns, topic, prims, Vec::new(), Vec::new());
        self.write_json(t_ns, topic, "foxglove.SceneUpdate", &msg)
    }

    /// The other agents as cubes on `/agents`.
    pub fn log_agents(&mut self, t_ns: u64, agents: &[AgentRecord]) -> Result<(), RecordError> {
        if let Some(a) = agents.iter().find(|a| !a.is_finite()) {
            return Err(RecordError::InvalidRecord {
                topic: "/agents".into(),
                reason: format!("agent {} is not finite", a.id),
            });
        }
        let cubes: Vec<Value> = agents
            .iter()
            .map(|a| {
                let c = [a.base_center_enu[0], a.base_center_enu[1], a.base_center_enu[2] + 0.5 * a.height_m];
                let q = Pose3::level(c, a.yaw_rad).quaternion_xyzw();
                json!({ "pose": pose_json(c, q), "size": vec3([a.length_m, a.width_m, a.height_m]), "color": color(AGENT_COLOR) })
            })
            .collect();
        let metadata: Vec<Value> =
            agents.iter().map(|a| json!({ "key": a.id.to_string(), "value": a.kind.clone() })).collect();
        let msg = scene_update(t_ns, "/agents", Vec::new(), cubes, metadata);
        self.write_json(t_ns, "/agents", "foxglove.SceneUpdate", &msg)
    }

    /// Writes the summary and closes the file.
    pub fn finish(mut self) -> Result<McapSummary, RecordError> {
        let Some(mut writer) = self.writer.take() else {
            return Err(RecordError::Mcap { path: self.path.clone(), message: "log already finished".into() });
        };
        let summary = writer.finish().map_err(|e| self.mcap_err(e))?;
        let mut inner = writer.into_inner();
        inner.flush().map_err(|source| RecordError::Io { path: self.path.clone(), source })?;
        let mut out = McapSummary { messages: self.messages, channels: BTreeMap::new() };
        for (topic, (id, schema, _)) in &self.channels {
            let count = summary.stats.as_ref().and_then(|s| s.channel_message_counts.get(id).copied()).unwrap_or(0);
            out.channels.insert(topic.clone(), (schema.to_string(), count));
        }
        tracing::debug!(path = %self.path.display(), messages = self.messages, "MCAP log finished");
        Ok(out)
    }
}

fn scene_update(t_ns: u64, id: &str, lines: Vec<Value>, cubes: Vec<Value>, metadata: Vec<Value>) -> Value {
    json!({
        "deletions": [],
        "entities": [{
            "timestamp": time(t_ns),
            "frame_id": MAP_FRAME,
            "id": id,
            "lifetime": { "sec": 0, "nsec": 0 },
            "frame_locked": false,
            "metadata": metadata,
            "arrows": [],
            "cubes": cubes,
            "spheres": [],
            "cylinders": [],
            "lines": lines,
            "triangles": [],
            "texts": [],
            "models": [],
        }],
    })
}

/// The JSON Schema of a Foxglove message type (the fields this crate writes, with
/// Foxglove's names and types).
pub fn schema_json(name: &str) -> Value {
    let num = json!({ "type": "number" });
    let time = json!({ "type": "object", "title": "time", "properties": {
        "sec": { "type": "integer", "minimum": 0 }, "nsec": { "type": "integer", "minimum": 0, "maximum": 999_999_999 } } });
    let vec3 = json!({ "type": "object", "title": "foxglove.Vector3", "properties": { "x": num, "y": num, "z": num } });
    let quat = json!({ "type": "object", "title": "foxglove.Quaternion", "properties": { "x": num, "y": num, "z": num, "w": num } });
    let pose =
        json!({ "type": "object", "title": "foxglove.Pose", "properties": { "position": vec3, "orientation": quat } });
    let color = json!({ "type": "object", "title": "foxglove.Color", "properties": { "r": num, "g": num, "b": num, "a": num } });
    let any_array = json!({ "type": "array", "items": { "type": "object" } });
    let props = match name {
        "foxglove.PoseInFrame" => json!({ "timestamp": time, "frame_id": { "type": "string" }, "pose": pose }),
        "foxglove.FrameTransform" => json!({
            "timestamp": time, "parent_frame_id": { "type": "string" }, "child_frame_id": { "type": "string" },
            "translation": vec3, "rotation": quat }),
        "foxglove.PointCloud" => json!({
            "timestamp": time, "frame_id": { "type": "string" }, "pose": pose,
            "point_stride": { "type": "integer", "minimum": 0 },
            "fields": { "type": "array", "items": { "type": "object", "title": "foxglove.PackedElementField", "properties": {
                "name": { "type": "string" }, "offset": { "type": "integer", "minimum": 0 },
                "type": { "title": "foxglove.NumericType", "type": "integer", "minimum": 0, "maximum": 8 } } } },
            "data": { "type": "string", "contentEncoding": "base64" } }),
        "foxglove.SceneUpdate" => {
            let line = json!({ "type": "object", "title": "foxglove.LinePrimitive", "properties": {
                "type": { "title": "foxglove.LineType", "type": "integer", "minimum": 0, "maximum": 2 },
                "pose": pose, "thickness": num, "scale_invariant": { "type": "boolean" },
                "points": { "type": "array", "items": vec3 }, "color": color,
                "colors": { "type": "array", "items": color },
                "indices": { "type": "array", "items": { "type": "integer", "minimum": 0 } } } });
            let cube = json!({ "type": "object", "title": "foxglove.CubePrimitive", "properties": {
                "pose": pose, "size": vec3, "color": color } });
            let entity = json!({ "type": "object", "title": "foxglove.SceneEntity", "properties": {
                "timestamp": time, "frame_id": { "type": "string" }, "id": { "type": "string" },
                "lifetime": { "type": "object", "title": "duration", "properties": {
                    "sec": { "type": "integer" }, "nsec": { "type": "integer", "minimum": 0, "maximum": 999_999_999 } } },
                "frame_locked": { "type": "boolean" },
                "metadata": { "type": "array", "items": { "type": "object", "title": "foxglove.KeyValuePair",
                    "properties": { "key": { "type": "string" }, "value": { "type": "string" } } } },
                "arrows": any_array, "cubes": { "type": "array", "items": cube }, "spheres": any_array,
                "cylinders": any_array, "lines": { "type": "array", "items": line }, "triangles": any_array,
                "texts": any_array, "models": any_array } });
            json!({
                "deletions": { "type": "array", "items": { "type": "object", "title": "foxglove.SceneEntityDeletion",
                    "properties": { "timestamp": time, "type": { "type": "integer", "minimum": 0, "maximum": 1 },
                    "id": { "type": "string" } } } },
                "entities": { "type": "array", "items": entity } })
        }
        _ => json!({}),
    };
    json!({ "title": name, "type": "object", "properties": props })
}
