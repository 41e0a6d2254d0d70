//! `swm simulate`, `report`, `scenarios` and `import-fcd` end to end.

mod common;
use common::{ok, s, swm};

use std::path::Path;

#[test]
fn simulate_report_scenarios_on_the_default_district() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["demo", "-o", s(dir.path())]);
    let swt = dir.path().join("default.swt");
    let run = dir.path().join("runs/short");
    let args = ["--vehicles", "60", "--pedestrians", "30", "--duration", "30", "--seed", "3"];
    let out = ok(&[&["simulate", s(&swt)][..], &args, &["-o", s(&run)]].concat());
    assert!(out.contains("simulated 30.0 s"), "{out}");
    for f in ["trajectories.parquet", "manifest.json", "metrics.json", "events.json"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }

    // Same seed, same bytes.
    let run2 = dir.path().join("runs/again");
    ok(&[&["simulate", s(&swt)][..], &args, &["-o", s(&run2)]].concat());
    for f in ["trajectories.parquet", "events.json"] {
        assert_eq!(std::fs::read(run.join(f)).unwrap(), std::fs::read(run2.join(f)).unwrap(), "{f} differs");
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 3);
    assert_eq!(manifest["sim_config"]["vehicles"], 60);
    assert_eq!(manifest["twin"]["file"], "default.swt");
    assert!(manifest["rows"].as_u64().unwrap() > 0);

    let report: serde_json::Value = serde_json::from_str(&ok(&["report", s(&run), "--json"])).unwrap();
    for key in [
        "vehicles",
        "pedestrians",
        "sim_seconds",
        "vehicle_collisions",
        "pedestrian_collisions",
        "red_light_violations",
        "gridlocked_vehicles",
        "mean_speed_mps",
        "vehicle_updates_per_s",
    ] {
        assert!(report.get(key).is_some(), "report --json lacks {key}: {report}");
    }
    assert!(report["vehicles"].as_u64().unwrap() > 0, "{report}");
    assert!((report["sim_seconds"].as_f64().unwrap() - 30.0).abs() < 0.2, "{report}");
    for png in ["speed_histogram.png", "vehicles_over_time.png", "travel_times.png"] {
        let bytes = std::fs::read(run.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    let text = ok(&["report", s(&run), "--no-plots"]);
    assert!(text.contains("vehicle collisions"), "{text}");
    // Piped into a reader that goes away (`swm report --json | head -c 1`): no panic.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_swm"))
        .args(["report", s(&run), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "a closed pipe is not a panic: {err}");

    let sc = dir.path().join("scenarios");
    let out = ok(&["scenarios", s(&run), "-o", s(&sc), "--history", "1", "--future", "8", "--radius", "50"]);
    assert!(out.contains("scenarios"), "{out}");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(sc.join("index.json")).unwrap()).unwrap();
    assert!(index["scenarios"].as_u64().unwrap() > 0, "{index}");
    assert!(sc.join("scenarios-00000.parquet").is_file());
    // The index names the run's twin and seed (the signal plans rollouts run on).
    assert_eq!(index["source"]["seed"], 3, "{index}");
    assert_eq!(index["source"]["twin"], manifest["twin"], "{index}");

    // The world model on those scenarios, on the CPU and on the GPU (lavapipe in CI).
    let mut rows = Vec::new();
    for backend in ["cpu", "gpu"] {
        let ro = dir.path().join(format!("rollouts-{backend}"));
        let args = ["--scenarios", s(&sc), "--samples", "2", "--steps", "10", "--limit", "3", "--backend", backend];
        let out = swm(&[&["rollout", s(&swt)][..], &args, &["-o", s(&ro)]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        if backend == "gpu" && !out.status.success() && std::env::var("CI").as_deref() != Ok("true") {
            eprintln!("skipped the GPU rollout (no adapter?): {stderr}");
            continue;
        }
        assert!(out.status.success(), "rollout --backend {backend}: {stderr}");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(ro.join("manifest.json")).unwrap()).unwrap();
        assert!(ro.join("sample-00001.parquet").is_file(), "{m}");
        rows.push(m["files"].clone());
    }
    // Same rows per sample file on both backends.
    if rows.len() == 2 {
        assert_eq!(rows[0], rows[1]);
    }
    // Both masks by default; `--masks none` samples the network's own distribution, and the
    // manifest says which.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("rollouts-cpu/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["mask"], serde_json::json!({ "collision": true, "offroad": true }), "{m}");
    assert_eq!(m["signal_seed"], 3, "the run's signal plans, from the index: {m}");

    // Another twin (a procedural district of another seed) is refused, by name.
    let other_swt = dir.path().join("other.swt");
    ok(&["generate", "--seed", "2", "-o", s(&other_swt)]);
    let ro = dir.path().join("other-ro");
    let out = swm(&["rollout", s(&other_swt), "--scenarios", s(&sc), "--samples", "1", "-o", s(&ro)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("default.swt") && err.contains("give the twin"), "{err}");
    let model = dir.path().join("other.safetensors");
    let out = swm(&["train", "--twin", s(&other_swt), "--scenarios", s(&sc), "-o", s(&model)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("give the twin"), "{err}");

    // Scenario directories of two twins train together, each on its own twin (in either
    // order on the command line).
    let other_run = dir.path().join("runs/other");
    let args = ["--vehicles", "20", "--pedestrians", "10", "--duration", "20", "--seed", "4"];
    ok(&[&["simulate", s(&other_swt)][..], &args, &["-o", s(&other_run)]].concat());
    let other_sc = dir.path().join("scenarios-other");
    ok(&["scenarios", s(&other_run), "-o", s(&other_sc)]);
    #[rustfmt::skip]
    let out = ok(&[
        "train", "--twin", s(&other_swt), s(&swt), "--scenarios", s(&sc), s(&other_sc), "--epochs", "1",
        "--batch", "64", "--trunk-hidden", "32", "--neighbour-hidden", "16", "-o", s(&model),
    ]);
    let on = |d: &Path, t: &Path| format!("from {} on {}", d.display(), t.display());
    assert!(out.contains(&on(&sc, &swt)) && out.contains(&on(&other_sc, &other_swt)), "{out}");
    let out = swm(&["train", "--twin", s(&other_swt), s(&other_swt), "--scenarios", s(&sc), "-o", s(&model)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("which is none of --twin"), "{err}");
    let ro = dir.path().join("rollouts-unmasked");
    let args = ["--scenarios", s(&sc), "--samples", "2", "--steps", "10", "--limit", "3", "--masks", "none"];
    ok(&[&["rollout", s(&swt)][..], &args, &["-o", s(&ro)]].concat());
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(ro.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["mask"], serde_json::json!({ "collision": false, "offroad": false }), "{m}");
    assert_eq!(m["files"], rows[0], "the same rows per sample file");
}

#[test]
fn import_fcd_fixture() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["demo", "-o", s(dir.path())]);
    let swt = dir.path().join("default.swt");
    let fcd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sumo-fcd.xml");
    let run = dir.path().join("sumo");
    let out = ok(&["import-fcd", s(&fcd), "--twin", s(&swt), "--offset", "100,50", "-o", s(&run)]);
    assert!(out.contains("imported 7 records of 3 agents (2 vehicles, 1 pedestrians)"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["source"], "sumo-fcd");
    assert_eq!(manifest["rows"], 7);
    let report: serde_json::Value = serde_json::from_str(&ok(&["report", s(&run), "--json"])).unwrap();
    assert_eq!(report["vehicles"], 2);
    assert_eq!(report["pedestrians"], 1);

    // A broken file is an error naming the file and line, not a panic.
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" y=\"1\" angle=\"0\"/>\n").unwrap();
    let out = swm(&["import-fcd", s(&bad), "--twin", s(&swt), "-o", s(&dir.path().join("bad"))]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.xml:3") && !err.contains("panicked"), "{err}");
}
