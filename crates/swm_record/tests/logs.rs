//! MCAP and Parquet logs written, then read back with the `mcap` and `parquet` readers.

use arrow_array::{Array, Float64Array, StringArray, UInt64Array};
use base64::Engine;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::collections::BTreeMap;
use swm_record::{AgentRecord, McapLog, ParquetLog, Pose3};

fn agents(t: f64) -> Vec<AgentRecord> {
    vec![
        AgentRecord {
            id: 3,
            kind: "car".into(),
            base_center_enu: [10.0 + t, 2.0, 0.5],
            yaw_rad: 0.1,
            length_m: 4.5,
            width_m: 1.8,
            height_m: 1.5,
        },
        AgentRecord {
            id: 8,
            kind: "pedestrian".into(),
            base_center_enu: [-3.0, 4.0 - t, 0.5],
            yaw_rad: -1.2,
            length_m: 0.5,
            width_m: 0.5,
            height_m: 1.7,
        },
    ]
}

fn points(k: usize) -> Vec<[f64; 3]> {
    (0..100 + k).map(|i| [i as f64 * 0.5, -(i as f64), 1000.0 + 0.001 * i as f64]).collect()
}

/// Writes ten steps of everything to an MCAP file.
fn write_mcap(path: &std::path::Path) -> swm_record::McapSummary {
    let mut log = McapLog::create(path).unwrap();
    for k in 0..10u64 {
        let t_ns = k * 100_000_000 + 1_500_000_000;
        let pose = Pose3 { position_enu: [k as f64, 0.5, 30.0], yaw_rad: 0.3, pitch_rad: 0.0, roll_rad: 0.0 };
        log.log_pose(t_ns, "drone", &pose).unwrap();
        log.log_lidar(t_ns, &points(k as usize)).unwrap();
        log.log_path(t_ns, "/plan", &[[0.0, 0.0, 30.0], [5.0, 5.0, 35.0], [10.0, 0.0, 30.0]]).unwrap();
        log.log_paths(
            t_ns,
            "/plan/candidates",
            &[vec![[0.0; 3], [1.0; 3]], vec![[0.0; 3], [2.0; 3]]],
            [0.5, 0.5, 0.5, 0.4],
        )
        .unwrap();
        log.log_agents(t_ns, &agents(k as f64)).unwrap();
    }
    log.log_outlines(0, "/twin/buildings", &[vec![[0.0, 0.0, 20.0], [10.0, 0.0, 20.0], [10.0, 10.0, 20.0]]], [1.0; 4])
        .unwrap();
    // Refused records are errors, not panics, and do not count.
    assert!(log.log_lidar(0, &[[f64::NAN, 0.0, 0.0]]).is_err());
    assert!(log.log_point_cloud(0, "/tf", &[[0.0; 3]]).is_err(), "a topic keeps its schema");
    log.finish().unwrap()
}

#[test]
fn mcap_log_has_foxglove_schemas_channels_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.mcap");
    let summary = write_mcap(&path);
    assert_eq!(summary.messages, 10 * 6 + 1);
    let bytes = std::fs::read(&path).unwrap();

    // The summary section, as a reader sees it.
    let read = mcap::Summary::read(&bytes).unwrap().expect("a summary section");
    let stats = read.stats.expect("statistics");
    assert_eq!(stats.message_count, 61);
    let mut by_topic: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for ch in read.channels.values() {
        let schema = ch.schema.as_ref().expect("every channel has a schema");
        assert_eq!(schema.encoding, "jsonschema");
        let parsed: Value = serde_json::from_slice(&schema.data).unwrap();
        assert_eq!(parsed["title"], schema.name.as_str());
        by_topic.insert(ch.topic.clone(), (schema.name.clone(), ch.message_encoding.clone(), String::new()));
    }
    let expect = [
        ("/drone/pose", "foxglove.PoseInFrame"),
        ("/tf", "foxglove.FrameTransform"),
        ("/lidar", "foxglove.PointCloud"),
        ("/plan", "foxglove.SceneUpdate"),
        ("/plan/candidates", "foxglove.SceneUpdate"),
        ("/agents", "foxglove.SceneUpdate"),
        ("/twin/buildings", "foxglove.SceneUpdate"),
    ];
    assert_eq!(by_topic.len(), expect.len());
    for (topic, schema) in expect {
        assert_eq!(by_topic[topic].0, schema, "{topic}");
        assert_eq!(by_topic[topic].1, "json", "{topic}");
        assert_eq!(summary.channels[topic].0, schema);
    }
    assert_eq!(summary.channels["/lidar"].1, 10);
    assert_eq!(summary.channels["/twin/buildings"].1, 1);

    // Every message, in order, with the Foxglove fields.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_time = BTreeMap::new();
    for msg in mcap::MessageStream::new(&bytes).unwrap() {
        let msg = msg.unwrap();
        let topic = msg.channel.topic.clone();
        *counts.entry(topic.clone()).or_default() += 1;
        assert!(msg.log_time >= *last_time.get(&topic).unwrap_or(&0), "{topic} in time order");
        last_time.insert(topic.clone(), msg.log_time);
        assert_eq!(msg.log_time, msg.publish_time);
        let v: Value = serde_json::from_slice(&msg.data).unwrap();
        match msg.channel.schema.as_ref().unwrap().name.as_str() {
            "foxglove.PoseInFrame" => {
                assert_eq!(v["frame_id"], "map");
                assert_eq!(v["timestamp"]["sec"].as_u64().unwrap(), msg.log_time / 1_000_000_000);
                assert_eq!(v["timestamp"]["nsec"].as_u64().unwrap(), msg.log_time % 1_000_000_000);
                let q = &v["pose"]["orientation"];
                let n: f64 = ["x", "y", "z", "w"].iter().map(|k| q[k].as_f64().unwrap().powi(2)).sum();
                assert!((n - 1.0).abs() < 1e-12);
                assert!((q["z"].as_f64().unwrap() - 0.15f64.sin()).abs() < 1e-12, "yaw 0.3 about z");
                assert!(v["pose"]["position"]["x"].is_number());
            }
            "foxglove.FrameTransform" => {
                assert_eq!(v["parent_frame_id"], "map");
                assert_eq!(v["child_frame_id"], "drone");
                assert!(v["translation"]["z"].is_number() && v["rotation"]["w"].is_number());
            }
            "foxglove.PointCloud" => {
                assert_eq!(v["point_stride"], 24);
                let fields = v["fields"].as_array().unwrap();
                assert_eq!(fields.len(), 3);
                for (i, f) in fields.iter().enumerate() {
                    assert_eq!(f["name"], ["x", "y", "z"][i]);
                    assert_eq!(f["offset"], 8 * i);
                    assert_eq!(f["type"], 8, "FLOAT64");
                }
                let data = base64::engine::general_purpose::STANDARD.decode(v["data"].as_str().unwrap()).unwrap();
                let k = (msg.log_time - 1_500_000_000) / 100_000_000;
                let expect = points(k as usize);
                assert_eq!(data.len(), 24 * expect.len());
                let z_last = f64::from_le_bytes(data[data.len() - 8..].try_into().unwrap());
                assert_eq!(z_last, expect.last().unwrap()[2]);
            }
            "foxglove.SceneUpdate" => {
                assert!(v["deletions"].as_array().unwrap().is_empty());
                let entities = v["entities"].as_array().unwrap();
                assert_eq!(entities.len(), 1);
                let e = &entities[0];
                assert_eq!(e["id"], topic.as_str());
                assert_eq!(e["frame_id"], "map");
                for key in
                    ["arrows", "cubes", "spheres", "cylinders", "lines", "triangles", "texts", "models", "metadata"]
                {
                    assert!(e[key].is_array(), "{topic}: {key}");
                }
                if topic == "/agents" {
                    let cubes = e["cubes"].as_array().unwrap();
                    assert_eq!(cubes.len(), 2);
                    assert_eq!(cubes[0]["size"]["x"], 4.5);
                    assert_eq!(
                        cubes[0]["pose"]["position"]["z"],
                        0.5 + 0.75,
                        "the cube's centre is half its height up"
                    );
                    assert_eq!(e["metadata"][1]["value"], "pedestrian");
                } else {
                    let lines = e["lines"].as_array().unwrap();
                    assert!(!lines.is_empty());
                    let kind = if topic == "/twin/buildings" { 1 } else { 0 };
                    assert!(lines.iter().all(|l| l["type"] == kind && l["points"].as_array().unwrap().len() >= 2));
                }
            }
            other => panic!("unexpected schema {other}"),
        }
    }
    assert_eq!(counts["/tf"], 10);
    assert_eq!(counts["/agents"], 10);
    assert_eq!(counts.values().sum::<usize>(), 61);

    // The same calls give the same bytes.
    let again = dir.path().join("again.mcap");
    write_mcap(&again);
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn parquet_log_tables_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("log");
    let mut log = ParquetLog::create(&out).unwrap();
    for k in 0..5u64 {
        let t_ns = k * 100_000_000;
        log.log_pose(t_ns, "drone", &Pose3::level([k as f64, 1.0, 2.0], 0.5)).unwrap();
        log.log_lidar(t_ns, &points(k as usize)).unwrap();
        log.log_paths(t_ns, "/plan/candidates", &[vec![[0.0; 3], [1.0; 3]], vec![[2.0; 3]]]).unwrap();
        log.log_agents(t_ns, &agents(k as f64)).unwrap();
    }
    assert!(log.log_pose(0, "drone", &Pose3::level([f64::INFINITY, 0.0, 0.0], 0.0)).is_err());
    let summary = log.finish().unwrap();
    assert_eq!(summary.poses, 5);
    assert_eq!(summary.points, (100..105).sum::<u64>());
    assert_eq!(summary.paths, 15);
    assert_eq!(summary.agents, 10);

    let read = |name: &str| {
        let file = std::fs::File::open(out.join(format!("{name}.parquet"))).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let kv = builder.metadata().file_metadata().key_value_metadata().unwrap().clone();
        assert!(kv.iter().any(|k| k.key == "swm.schema" && k.value.as_deref() == Some("swm-robot-log/1")));
        let batches: Vec<_> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        arrow_select_concat(&batches)
    };
    let poses = read("poses");
    assert_eq!(poses.num_rows(), 5);
    let x = poses.column_by_name("x_m").unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(x.value(3), 3.0);
    let frame = poses.column_by_name("frame").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(frame.value(0), "drone");
    let pts = read("points");
    assert_eq!(pts.num_rows() as u64, summary.points);
    let z = pts.column_by_name("z_m").unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(z.value(1), 1000.001);
    let ag = read("agents");
    let ids = ag.column_by_name("id").unwrap().as_any().downcast_ref::<UInt64Array>().unwrap();
    assert_eq!((ids.value(0), ids.value(1)), (3, 8));
    assert_eq!(ag.column_by_name("kind").unwrap().len(), 10);
    assert_eq!(read("paths").num_rows(), 15);
}

/// Concatenates record batches (all from one file, same schema).
fn arrow_select_concat(batches: &[arrow_array::RecordBatch]) -> arrow_array::RecordBatch {
    assert!(!batches.is_empty());
    if batches.len() == 1 {
        return batches[0].clone();
    }
    panic!("expected one row group per small table, got {}", batches.len());
}

#[test]
fn unwritable_log_paths_are_io_errors_with_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("log.mcap");
    let Err(err) = McapLog::create(&path) else { panic!("created a log in a missing directory") };
    assert!(matches!(err, swm_record::RecordError::Io { .. }), "{err:?}");
    // The OS error is the source, not part of the message: the chain shows it once.
    let os = std::error::Error::source(&err).expect("the I/O error is the source").to_string();
    assert!(!err.to_string().contains(&os), "{err}");
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.contains("log.mcap"), "{chain}");
    assert_eq!(chain.matches(&os).count(), 1, "{chain}");
}
