//! The `swm` binary end to end, as a user runs it.

mod common;
use common::{fails, ok, s};

use std::path::PathBuf;
use swm_ingest::shared_data::require_shared_data;

#[test]
fn help_teaches() {
    let help = ok(&["--help"]);
    for cmd in ["ingest", "inspect", "export", "map", "generate", "demo"] {
        assert!(help.contains(cmd), "{help}");
    }
    let ingest = ok(&["ingest", "--help"]);
    assert!(ingest.contains("--bbox") && ingest.contains("Examples"), "{ingest}");
}

#[test]
fn ingest_inspect_export_map_on_yeouido() {
    let Some(pbf) = require_shared_data("seoul/yeouido.osm.pbf") else { return };
    let dir = tempfile::tempdir().unwrap();
    let swt = dir.path().join("yeouido.swt");
    let out = ok(&["ingest", s(&pbf), "-o", s(&swt)]);
    assert!(out.contains("buildings") && out.contains("warnings"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["inspect", s(&swt), "--json"])).unwrap();
    for key in [
        "buildings",
        "buildings_with_measured_height",
        "lanes",
        "lane_connections",
        "junctions",
        "signals",
        "walk_edges",
        "crossings",
        "bbox_wgs84",
        "origin_wgs84",
    ] {
        assert!(json.get(key).is_some(), "inspect --json lacks {key}: {json}");
    }
    assert_eq!(json["buildings"], 592);
    assert_eq!(json["buildings_with_measured_height"], 462);
    let bbox = json["bbox_wgs84"].as_array().unwrap();
    assert!(bbox[0].as_f64().unwrap() < 126.93 && bbox[2].as_f64().unwrap() > 126.93, "{bbox:?}");

    let gj = dir.path().join("y.geojson");
    let glb = dir.path().join("y.glb");
    ok(&["export", s(&swt), "--geojson", s(&gj), "--gltf", s(&glb)]);
    let fc: serde_json::Value = serde_json::from_slice(&std::fs::read(&gj).unwrap()).unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    let feats = fc["features"].as_array().unwrap();
    let parc1 = feats
        .iter()
        .find(|f| f["properties"]["kind"] == "building" && f["properties"]["height_m"] == 322.0)
        .expect("Parc.1 in the GeoJSON");
    assert!(parc1["properties"]["osm_id"].as_str().unwrap().starts_with("way/"));
    assert_eq!(parc1["properties"]["height_source"], "tagged");
    assert!(feats.iter().any(|f| f["properties"]["kind"] == "lane"));
    assert!(feats.iter().any(|f| f["properties"]["kind"] == "walk_edge"));
    assert!(feats.iter().any(|f| f["properties"]["kind"] == "land_cover"));
    let glb_bytes = std::fs::read(&glb).unwrap();
    assert_eq!(&glb_bytes[..4], b"glTF");

    let png = dir.path().join("y.png");
    ok(&["map", s(&swt), "-o", s(&png), "--width", "800"]);
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.swt");
    // Malformed XML: names the file and the line.
    let xml = dir.path().join("broken.osm");
    std::fs::write(&xml, "<osm version=\"0.6\">\n<node id=\"1\" lat=\"37.5\" lon=\"127\">\n<tag k=\"a\"\n</osm>")
        .unwrap();
    let err = fails(&["ingest", s(&xml), "-o", s(&out)]);
    assert!(err.contains("broken.osm") && err.contains("line"), "{err}");
    // Truncated PBF.
    if let Some(pbf) = require_shared_data("seoul/jamsil.osm.pbf") {
        let bytes = std::fs::read(pbf).unwrap();
        let cut = dir.path().join("cut.osm.pbf");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = fails(&["ingest", s(&cut), "-o", s(&out)]);
        assert!(err.contains("cut.osm.pbf"), "{err}");
    }
    // Empty bbox.
    let err = fails(&["ingest", s(&xml), "--bbox", "127.1,37.5,127.0,37.6", "-o", s(&out)]);
    assert!(err.contains("bbox"), "{err}");
    // Missing file: the message names it and gives the OS cause once (the library errors
    // keep the cause in `source()`, the CLI prints the chain).
    let os = std::fs::metadata("/nonexistent/seoul.osm.pbf").unwrap_err().to_string();
    let err = fails(&["ingest", "/nonexistent/seoul.osm.pbf", "-o", s(&out)]);
    assert!(err.contains("/nonexistent/seoul.osm.pbf"), "{err}");
    assert_eq!(err.matches(&os).count(), 1, "{err}");
    let err = fails(&["inspect", "/nonexistent/city.swt"]);
    assert!(err.contains("/nonexistent/city.swt"), "{err}");
    assert_eq!(err.matches(&os).count(), 1, "{err}");
    // Not a twin.
    let err = fails(&["inspect", s(&xml)]);
    assert!(err.contains("broken.osm"), "{err}");
    // Unknown extension.
    let weird = dir.path().join("data.xyz");
    std::fs::write(&weird, "hello").unwrap();
    let err = fails(&["ingest", s(&weird), "-o", s(&out)]);
    assert!(err.contains("data.xyz"), "{err}");
}

#[test]
fn demo_runs_the_embedded_default_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = dir.path().join("out");
    let out = ok(&["demo", "-o", s(&out_dir)]);
    assert!(out.contains("buildings"), "{out}");
    for f in ["default.swt", "default-map.png", "default.glb", "default.geojson"] {
        assert!(out_dir.join(f).exists(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", s(&out_dir.join("default.swt")), "--json"])).unwrap();
    assert!(json["buildings"].as_u64().unwrap() > 300, "{json}");
    assert!(json["lanes"].as_u64().unwrap() > 100, "{json}");
    assert!(json["crossings"].as_u64().unwrap() > 10, "{json}");
    assert!(json["signals"].as_u64().unwrap() > 3, "{json}");
}

/// `swm train` end to end on a small procedural district, with the network's widths
/// chosen on the command line: the model file has them, and so do the report and the
/// loss plot written beside it; widths of 0 or too large are refused with the flag's name.
/// The districts' parameters come from `--district FILE`, which the report names; a bad
/// file is refused with its name.
#[test]
fn train_writes_a_model_of_the_widths_asked() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("small.safetensors");
    let district = dir.path().join("straight.toml");
    std::fs::write(&district, "bend_share = 0.0\nexpressway = false\n").unwrap();
    #[rustfmt::skip]
    let out = ok(&[
        "train", "--procgen-seeds", "5", "--vehicles", "20", "--pedestrians", "10", "--duration", "10",
        "--epochs", "2", "--batch", "64", "--trunk-hidden", "48", "--neighbour-hidden", "16",
        "--district", s(&district), "-o", s(&model),
    ]);
    assert!(out.contains("training pairs") && out.contains("epoch  2"), "{out}");
    let net = swm_model::Network::load(&model).expect("the trained model loads");
    let want = swm_model::NetConfig { nbr_hidden: 16, trunk_hidden: 48 };
    assert_eq!((net.config.nbr_hidden, net.config.trunk_hidden), (16, 48));
    assert_eq!(net.parameters(), want.parameters());
    assert!(out.contains(&format!("trained {} parameters", want.parameters())), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("small-training.json")).unwrap()).unwrap();
    assert_eq!(report["config"]["net"]["trunk_hidden"], 48, "{report}");
    assert_eq!(report["config"]["net"]["nbr_hidden"], 16, "{report}");
    assert!(report["best"]["val_loss"].as_f64().is_some_and(f64::is_finite), "{report}");
    assert!(report["data"].to_string().contains("straight.toml"), "{report}");
    let png = std::fs::read(dir.path().join("small-loss.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the loss plot is a PNG");

    let err = fails(&["train", "--district", s(&district), "--scenarios", s(dir.path()), "-o", s(&model)]);
    assert!(err.contains("--district") && err.contains("needs --procgen-seeds"), "{err}");
    std::fs::write(&district, "bend_share = 2.0\n").unwrap();
    let err = fails(&["train", "--procgen-seeds", "5", "--district", s(&district), "-o", s(&model)]);
    assert!(err.contains("straight.toml") && err.contains("bend_share"), "{err}");

    let err = fails(&["train", "--procgen-seeds", "5", "--trunk-hidden", "0", "-o", s(&model)]);
    assert!(err.contains("--trunk-hidden 0"), "{err}");
    let err = fails(&["train", "--procgen-seeds", "5", "--neighbour-hidden", "100000", "-o", s(&model)]);
    assert!(err.contains("--neighbour-hidden 100000"), "{err}");
}

/// `swm train --rollout-rounds`: training, then a round of rollout fine-tuning, reported in
/// the JSON; `--init` fine-tunes an existing model; inconsistent options are refused by name.
#[test]
fn train_rollout_rounds_fine_tune_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("small.safetensors");
    #[rustfmt::skip]
    let district = ["--procgen-seeds", "5", "--vehicles", "20", "--pedestrians", "10", "--duration", "20", "--batch", "64"];
    #[rustfmt::skip]
    let round = ["--rollout-rounds", "1", "--round-epochs", "1", "--round-scenarios", "6"];
    let mut args = vec!["train", "--epochs", "1", "--trunk-hidden", "48", "--neighbour-hidden", "16"];
    args.extend(district);
    args.extend(round);
    args.extend(["-o", s(&model)]);
    let out = ok(&args);
    assert!(out.contains("round 1: the masks replaced") && out.contains("on 6 start states"), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("small-training.json")).unwrap()).unwrap();
    let rounds = report["rollout_rounds"].as_array().expect("the rounds are reported");
    assert_eq!(rounds.len(), 1, "{report}");
    let steps = rounds[0]["collected"]["agent_steps"].as_u64().unwrap();
    let replaced = rounds[0]["collected"]["replaced"].as_u64().unwrap();
    assert!(steps > 0 && replaced <= steps, "{report}");
    // The round's pairs are the first training's plus the corrections.
    assert_eq!(rounds[0]["pairs"].as_u64().unwrap(), report["pairs"].as_u64().unwrap(), "{report}");
    assert_eq!(report["epochs"].as_array().unwrap().len(), 2, "one epoch, then the round's: {report}");
    assert_eq!(report["best_epoch"], 2, "{report}");

    // Fine-tuning the result: its sizes are kept.
    let tuned = dir.path().join("tuned.safetensors");
    let mut args = vec!["train", "--init", s(&model), "--epochs", "0"];
    args.extend(district);
    args.extend(round);
    args.extend(["-o", s(&tuned)]);
    let out = ok(&args);
    assert!(out.contains("round 1: the masks replaced"), "{out}");
    let net = swm_model::Network::load(&tuned).expect("the fine-tuned model loads");
    assert_eq!((net.config.nbr_hidden, net.config.trunk_hidden), (16, 48));
    let before = swm_model::Network::load(&model).unwrap();
    assert_ne!(net.layers(), before.layers(), "the round changed the weights");

    let err = fails(&["train", "--init", s(&model), "--trunk-hidden", "32", "--procgen-seeds", "5", "-o", s(&tuned)]);
    assert!(err.contains("--trunk-hidden 32") && err.contains("has 48"), "{err}");
    let err = fails(&["train", "--epochs", "0", "--rollout-rounds", "1", "--procgen-seeds", "5", "-o", s(&tuned)]);
    assert!(err.contains("--epochs 0 needs --init"), "{err}");
    let err = fails(&["train", "--init", s(&model), "--epochs", "0", "--procgen-seeds", "5", "-o", s(&tuned)]);
    assert!(err.contains("nothing to train"), "{err}");
    let err = fails(&["train", "--scenarios", s(dir.path()), "--rollout-rounds", "1", "-o", s(&tuned)]);
    assert!(err.contains("--rollout-rounds needs --procgen-seeds"), "{err}");
    let err =
        fails(&["train", "--procgen-seeds", "5", "--rollout-rounds", "1", "--round-epochs", "0", "-o", s(&tuned)]);
    assert!(err.contains("--round-epochs"), "{err}");
    let err = fails(&["train", "--procgen-seeds", "5", "--rollout-rounds", "1", "--round-lr", "0", "-o", s(&tuned)]);
    assert!(err.contains("--round-lr 0"), "{err}");
}
