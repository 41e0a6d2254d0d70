//! `swm eval`: the table of methods, its JSON contract, and the realism goals on the real
//! Seoul districts the shipped model never saw in training.

mod common;

use common::{fails, ok};

const KEYS: [&str; 6] =
    ["meta_metric", "min_ade_m", "collision_rate", "offroad_rate", "occupancy_iou_1s", "occupancy_iou_3s"];

/// A small held-out set on the embedded default district (seconds, not minutes).
const SMALL: [&str; 14] = [
    "--max-scenarios",
    "6",
    "--samples",
    "3",
    "--vehicles",
    "120",
    "--pedestrians",
    "20",
    "--warmup",
    "20",
    "--window",
    "10",
    "--future",
    "4",
];

fn eval_json(twin: &str, extra: &[&str], out: &std::path::Path) -> serde_json::Value {
    let out_s = out.to_str().unwrap();
    let mut args = vec!["eval", twin, "--json", "-o", out_s];
    args.extend_from_slice(extra);
    let stdout = ok(&args);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for m in ["model", "constant_velocity", "random", "teacher_other_seed"] {
        for k in KEYS {
            assert!(v[m][k].is_number(), "{m}.{k} missing in {v}");
        }
    }
    for png in ["meta_metric.png", "min_ade.png", "occupancy_iou.png"] {
        assert!(out.join(png).is_file(), "{png} not written");
    }
    assert!(out.join("eval.json").is_file());
    v
}

#[test]
fn eval_with_gpu_rollouts_scores_the_model_like_the_cpu() {
    // `--backend gpu` (lavapipe in CI): the model's rollouts on the GPU engine score within
    // the GPU crate's stated tolerance of the CPU's on the same held-out scenarios.
    let args: Vec<&str> = SMALL.iter().copied().chain(["--methods", "model"]).collect();
    let (cpu_dir, gpu_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |dir: &std::path::Path, backend: &str| -> Option<serde_json::Value> {
        let mut a = vec!["eval", "default", "--json", "-o", dir.to_str().unwrap(), "--backend", backend];
        a.extend_from_slice(&args);
        if backend == "gpu" && std::env::var("CI").map_or(true, |v| v != "true") {
            // Outside CI a machine without a Vulkan driver skips (CI installs lavapipe).
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_swm")).args(&a).output().unwrap();
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("no GPU adapter"), "{err}");
                eprintln!("skipped: {err}");
                return None;
            }
            return Some(serde_json::from_slice(&out.stdout).unwrap());
        }
        Some(serde_json::from_str(ok(&a).trim()).unwrap())
    };
    let cpu = run(cpu_dir.path(), "cpu").unwrap();
    let Some(gpu) = run(gpu_dir.path(), "gpu") else { return };
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gpu_dir.path().join("eval.json")).unwrap()).unwrap();
    assert_eq!(doc["backend"], "gpu");
    let (c, g) = (meta(&cpu, "model"), meta(&gpu, "model"));
    assert!((c - g).abs() < 0.03, "meta-metric cpu {c} gpu {g}");
    for k in ["collision_rate", "offroad_rate"] {
        let (c, g) = (cpu["model"][k].as_f64().unwrap(), gpu["model"][k].as_f64().unwrap());
        assert!((c - g).abs() < 0.05, "{k}: cpu {c} gpu {g}");
    }
}

fn meta(v: &serde_json::Value, m: &str) -> f64 {
    v[m]["meta_metric"].as_f64().unwrap()
}

#[test]
fn eval_default_district_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let v = eval_json("default", &SMALL, dir.path());
    // The teacher under another seed is the ceiling, random tokens the floor.
    assert!(meta(&v, "teacher_other_seed") > meta(&v, "random"), "{v}");
    assert!(meta(&v, "model") > meta(&v, "random"), "{v}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval.json")).unwrap()).unwrap();
    assert_eq!(doc["masks"], "all");
    // The network alone (`--masks none`), said so in the file.
    let bare = tempfile::tempdir().unwrap();
    let args: Vec<&str> = SMALL.iter().copied().chain(["--methods", "model", "--masks", "none"]).collect();
    let mut a = vec!["eval", "default", "--json", "-o", bare.path().to_str().unwrap()];
    a.extend_from_slice(&args);
    let v: serde_json::Value = serde_json::from_str(ok(&a).trim()).unwrap();
    assert!(v["model"]["meta_metric"].is_number(), "{v}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bare.path().join("eval.json")).unwrap()).unwrap();
    assert_eq!(doc["masks"], "none");
}

#[test]
fn eval_rejects_unknown_methods_and_bad_twins() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let err = fails(&["eval", "default", "--methods", "model,oracle", "-o", out]);
    assert!(err.contains("unknown method \"oracle\""), "{err}");
    let err = fails(&["eval", "default", "--masks", "some", "-o", out]);
    assert!(err.contains("--masks") && err.contains("some"), "{err}");
    let err = fails(&["eval", "/nonexistent/city.swt", "-o", out]);
    assert!(err.contains("/nonexistent/city.swt"), "{err}");
    let os = std::fs::metadata("/nonexistent/city.swt").unwrap_err().to_string();
    assert_eq!(err.matches(&os).count(), 1, "the OS cause once: {err}");
}

/// The goals on real Seoul (unseen in training): the model beats constant velocity
/// on the meta-metric and copy-last on occupancy IoU at 3 s.
#[test]
fn eval_real_seoul_model_beats_baselines() {
    for (name, bbox) in
        [("seoul/yeouido.osm.pbf", Some("126.915,37.515,126.945,37.535")), ("seoul/jamsil.osm.pbf", None)]
    {
        let Some(pbf) = swm_ingest::shared_data::require_shared_data(name) else { return };
        let dir = tempfile::tempdir().unwrap();
        let swt = dir.path().join("city.swt");
        let (pbf_s, swt_s) = (pbf.to_str().unwrap(), swt.to_str().unwrap());
        let mut args = vec!["ingest", pbf_s, "-o", swt_s];
        if let Some(b) = bbox {
            args.extend_from_slice(&["--bbox", b]);
        }
        ok(&args);
        let out = dir.path().join("eval");
        let v = eval_json(
            swt_s,
            &["--max-scenarios", "24", "--samples", "4", "--vehicles", "200", "--warmup", "40", "--window", "30"],
            &out,
        );
        eprintln!("{name}: {v}");
        assert!(meta(&v, "model") > meta(&v, "constant_velocity"), "{name}: {v}");
        let iou3 = v["model"]["occupancy_iou_3s"].as_f64().unwrap();
        let copy3 = v["model"]["copy_last_occupancy_iou_3s"].as_f64().unwrap();
        assert!(iou3 > copy3, "{name}: IoU 3 s {iou3} vs copy-last {copy3}");
    }
}
