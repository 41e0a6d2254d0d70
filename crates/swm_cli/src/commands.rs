//! The subcommands.

use crate::{Cli, Command};
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;
use swm_core::LatLon;
use swm_ingest::{IngestOptions, Report, VectorMapping};
use swm_twin::{Control, Twin};

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Input files: .osm.pbf, .osm/.xml (incl. Overpass), .geojson, .tif/.hgt (DEM).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output twin file (.swt).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Digital elevation model(s): GeoTIFF or SRTM .hgt (repeatable).
    #[arg(long)]
    pub dem: Vec<PathBuf>,
    /// Keep only what reaches into this box: WEST,SOUTH,EAST,NORTH in degrees.
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: Option<[f64; 4]>,
    /// Origin of the twin's metric frame: LAT,LON in degrees (default: the data's median).
    #[arg(long, value_parser = parse_latlon, allow_hyphen_values = true)]
    pub origin: Option<LatLon>,
    /// Name of the twin (default: the first input's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Attribute of vector inputs holding building height in metres (repeatable; tried in order).
    #[arg(long = "height-attr")]
    pub height_attr: Vec<String>,
    /// Attribute of vector inputs holding the number of floors (repeatable; e.g. GRND_FLR).
    #[arg(long = "levels-attr")]
    pub levels_attr: Vec<String>,
    /// Attribute of vector inputs holding the feature's name (repeatable; e.g. BLD_NM).
    #[arg(long = "name-attr")]
    pub name_attr: Vec<String>,
    /// Coordinate system of vector inputs, overriding what the files say (EPSG:5186, 5179, 32652...).
    #[arg(long = "vector-crs", value_parser = parse_crs)]
    pub vector_crs: Option<swm_core::Crs>,
    /// Print every warning, not only the first 20.
    #[arg(long)]
    pub all_warnings: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A twin file (.swt).
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A twin file (.swt).
    pub file: PathBuf,
    /// Write a GeoJSON FeatureCollection (WGS84) here.
    #[arg(long)]
    pub geojson: Option<PathBuf>,
    /// Write a binary glTF (.glb) scene here.
    #[arg(long)]
    pub gltf: Option<PathBuf>,
    /// Coordinate system of the GeoJSON: EPSG:4326 (default, RFC 7946), EPSG:5186,
    /// EPSG:5179 or EPSG:32652 (UTM 52N).
    #[arg(long, default_value = "EPSG:4326", value_parser = parse_crs)]
    pub crs: swm_core::Crs,
}

fn parse_crs(s: &str) -> Result<swm_core::Crs, String> {
    swm_core::Crs::parse(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct MapArgs {
    /// A twin file (.swt).
    pub file: PathBuf,
    /// Output PNG.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Image width in pixels (the height follows the twin's aspect ratio).
    #[arg(long, default_value_t = 2048)]
    pub width: u32,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// District parameters (TOML); default: the embedded default (data/default-district.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override the seed of the configuration.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output twin file (.swt).
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(short, long, default_value = "out")]
    pub output: PathBuf,
    /// Seed of the district (default: the embedded default's).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Args, Debug)]
pub struct TileArgs {
    /// An OSM file (.osm.pbf or .osm).
    pub input: PathBuf,
    /// Copies along each axis (K x K tiles in all).
    #[arg(long, default_value_t = 2)]
    pub times: u32,
    /// Output OSM XML file.
    #[arg(short, long)]
    pub output: PathBuf,
}

fn parse_floats<const N: usize>(s: &str, what: &str) -> Result<[f64; N], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|_| format!("{what}: {x:?} is not a number")))
        .collect::<Result<_, _>>()?;
    v.try_into().map_err(|v: Vec<f64>| format!("{what}: expected {N} comma-separated numbers, got {}", v.len()))
}

fn parse_bbox(s: &str) -> Result<[f64; 4], String> {
    let b = parse_floats::<4>(s, "bbox (WEST,SOUTH,EAST,NORTH)")?;
    if !(b[0] < b[2] && b[1] < b[3]) {
        return Err(format!("bbox {s}: empty or inverted (need WEST < EAST and SOUTH < NORTH)"));
    }
    if b[1] < -90.0 || b[3] > 90.0 || b[0] < -180.0 || b[2] > 180.0 {
        return Err(format!("bbox {s}: outside the world (longitudes ±180, latitudes ±90)"));
    }
    Ok(b)
}

fn parse_latlon(s: &str) -> Result<LatLon, String> {
    let v = parse_floats::<2>(s, "origin (LAT,LON)")?;
    let ll = LatLon::new(v[0], v[1]);
    if !ll.is_valid() {
        return Err(format!("origin {s}: latitude must be within ±90 and longitude within ±180"));
    }
    Ok(ll)
}

/// A bar style from `template`, which may use `{rate}`: items per second as a whole number
/// (indicatif's `{per_sec}` prints four decimals).
pub(crate) fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        })
        .progress_chars("=> ")
}

/// A bar of `len` items drawn with `template` (see [`bar_style`]), hidden when `quiet`.
pub(crate) fn rate_bar(quiet: bool, len: u64, template: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(bar_style(template));
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

pub(crate) fn progress(quiet: bool, len: u64, msg: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg:24} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ingest(a) => ingest(a, cli.quiet),
        Command::Inspect(a) => inspect(a),
        Command::Export(a) => export(a),
        Command::Map(a) => map(a),
        Command::Generate(a) => generate(a, cli.quiet),
        Command::Demo(a) => demo(a, cli.quiet),
        Command::Tile(a) => tile(a),
        Command::Simulate(a) => crate::sim_commands::simulate(a, cli.quiet),
        Command::Scenarios(a) => crate::sim_commands::scenarios(a, cli.quiet),
        Command::Report(a) => crate::sim_commands::report(a),
        Command::ImportFcd(a) => crate::sim_commands::import_fcd(a),
        Command::Train(a) => crate::model_commands::train_cmd(a, cli.quiet),
        Command::Rollout(a) => crate::model_commands::rollout_cmd(a, cli.quiet),
        Command::Eval(a) => crate::eval_commands::eval_cmd(a, cli.quiet),
        Command::Batch(a) => crate::batch_commands::batch_cmd(a, cli.quiet),
        Command::View(a) => crate::view_command::view_cmd(a),
    }
}

fn print_report(report: &Report, all: bool) {
    let n = report.warnings.len();
    if n == 0 {
        println!("warnings: none");
        return;
    }
    println!("warnings: {n}");
    let shown = if all { n } else { n.min(20) };
    for w in &report.warnings[..shown] {
        println!("  {}: {}", w.subject, w.message);
    }
    if shown < n {
        println!("  ... {} more (--all-warnings shows them)", n - shown);
    }
}

fn ingest(a: IngestArgs, quiet: bool) -> Result<()> {
    let mut vector = VectorMapping::default();
    if !a.height_attr.is_empty() {
        vector.height_attributes = a.height_attr.clone();
    }
    if !a.levels_attr.is_empty() {
        vector.levels_attributes = a.levels_attr.clone();
    }
    if !a.name_attr.is_empty() {
        vector.name_attributes = a.name_attr.clone();
    }
    vector.crs = a.vector_crs;
    let options =
        IngestOptions { name: a.name.clone(), origin: a.origin, bbox_wgs84: a.bbox, dems: a.dem.clone(), vector };
    let t0 = Instant::now();
    let total = (a.inputs.len() + a.dem.len() + 1) as u64;
    let pb = progress(quiet, total, "reading and building");
    let (twin, report) =
        swm_ingest::ingest_paths_with_progress(&a.inputs, &options, &mut |done, _| pb.set_position(done as u64))?;
    pb.set_message("writing");
    swm_twin::write_swt(&twin, &a.output)?;
    pb.finish_and_clear();
    println!(
        "read {} nodes, {} ways, {} relations from {}",
        report.nodes_read,
        report.ways_read,
        report.relations_read,
        report.inputs.join(", ")
    );
    print_summary(&twin);
    print_report(&report, a.all_warnings);
    println!("wrote {} in {:.2} s", a.output.display(), t0.elapsed().as_secs_f64());
    Ok(())
}

pub(crate) fn load(path: &Path) -> Result<Twin> {
    swm_twin::read_swt(path).with_context(|| format!("loading the twin {}", path.display()))
}

/// The summary as one JSON object (the `inspect --json` contract).
pub fn summary_json(twin: &Twin) -> serde_json::Value {
    let signals_guessed = twin.signals.iter().filter(|s| s.guessed).count();
    let by_source = |s: swm_twin::HeightSource| twin.buildings.iter().filter(|b| b.height_source == s).count();
    let lane_km: f64 = twin.lanes.iter().map(|l| l.length_m).sum::<f64>() / 1000.0;
    let comp = swm_twin::analysis::lane_components(twin);
    let o = twin.meta.origin_wgs84;
    json!({
        "name": twin.meta.name,
        "sources": twin.meta.sources,
        "built_by": twin.meta.built_by,
        "origin_wgs84": o.map(|o| json!([o.lat_deg, o.lon_deg])),
        "bbox_wgs84": twin.meta.bbox_wgs84,
        "bbox_m": twin.meta.bbox_m,
        "buildings": twin.buildings.len(),
        "building_parts": twin.building_parts.len(),
        "buildings_with_measured_height": twin.buildings_with_measured_height(),
        "buildings_height_from_levels": by_source(swm_twin::HeightSource::Levels),
        "buildings_height_from_parts": by_source(swm_twin::HeightSource::Parts),
        "buildings_height_estimated": by_source(swm_twin::HeightSource::Estimated),
        "m_per_level": twin.height_model.overall.m_per_level,
        "tallest_building_m": twin.buildings.iter().map(|b| b.height_m).fold(0.0, f64::max),
        "lanes": twin.lanes.len(),
        "lane_km": lane_km,
        "lane_connections": twin.lane_connections.len(),
        "junctions": twin.junctions.len(),
        "signalized_junctions": twin.junctions.iter().filter(|j| j.control.is_signalized()).count(),
        "signals": twin.signals.len(),
        "signals_guessed": signals_guessed,
        "largest_lane_component_share": comp.largest_share,
        "walk_nodes": twin.walk_nodes.len(),
        "walk_edges": twin.walk_edges.len(),
        "crossings": twin.crossings(),
        "signalled_crossings": twin.walk_edges.iter().filter(|e| e.signalled).count(),
        "land_cover": twin.land_cover.len(),
        "terrain": match &twin.terrain {
            swm_twin::Terrain::Flat { elevation_m } => json!({"kind": "flat", "elevation_m": elevation_m}),
            swm_twin::Terrain::Grid { nx, ny, cell_m, source, .. } =>
                json!({"kind": "grid", "nx": nx, "ny": ny, "cell_m": cell_m, "source": source}),
        },
    })
}

fn print_summary(twin: &Twin) {
    let s = summary_json(twin);
    let b = &twin.meta.bbox_wgs84;
    println!(
        "twin {:?}: {:.0} x {:.0} m, bbox {:.5},{:.5},{:.5},{:.5}",
        twin.meta.name,
        twin.meta.bbox_m[2] - twin.meta.bbox_m[0],
        twin.meta.bbox_m[3] - twin.meta.bbox_m[1],
        b[0],
        b[1],
        b[2],
        b[3]
    );
    println!(
        "  buildings   {} ({} measured heights, {} from levels, {} from parts, {} estimated; {:.2} m/level), {} parts",
        s["buildings"],
        s["buildings_with_measured_height"],
        s["buildings_height_from_levels"],
        s["buildings_height_from_parts"],
        s["buildings_height_estimated"],
        twin.height_model.overall.m_per_level,
        s["building_parts"]
    );
    println!(
        "  lane graph  {} lanes ({:.1} km), {} connections, {} junctions ({} signalized), {} signals ({} guessed)",
        s["lanes"],
        s["lane_km"].as_f64().unwrap_or(0.0),
        s["lane_connections"],
        s["junctions"],
        s["signalized_junctions"],
        s["signals"],
        s["signals_guessed"]
    );
    println!(
        "  walk graph  {} nodes, {} edges, {} crossings ({} signalled)",
        s["walk_nodes"], s["walk_edges"], s["crossings"], s["signalled_crossings"]
    );
    let uncontrolled = twin.junctions.iter().filter(|j| j.control == Control::Uncontrolled).count();
    println!("  land cover  {} features; {} right-before-left junctions", s["land_cover"], uncontrolled);
}

fn inspect(a: InspectArgs) -> Result<()> {
    let twin = load(&a.file)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary_json(&twin))?);
    } else {
        print_summary(&twin);
    }
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    if a.geojson.is_none() && a.gltf.is_none() {
        bail!("nothing to export: give --geojson OUT.geojson and/or --gltf OUT.glb");
    }
    let twin = load(&a.file)?;
    if let Some(p) = &a.geojson {
        swm_twin::export::geojson::write_geojson_in(&twin, a.crs, p)?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.gltf {
        swm_twin::export::gltf::write_glb(&twin, p)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn map(a: MapArgs) -> Result<()> {
    let twin = load(&a.file)?;
    let opts = swm_twin::export::map::MapOptions { width_px: a.width, ..Default::default() };
    swm_twin::export::map::write_map_png(&twin, &opts, &a.output)?;
    println!("wrote {}", a.output.display());
    Ok(())
}

fn district_params(config: Option<&Path>, seed: Option<u64>) -> Result<swm_procgen::DistrictParams> {
    let mut p = match config {
        Some(c) => swm_procgen::DistrictParams::load(c)?,
        None => swm_procgen::DistrictParams::embedded_default(),
    };
    if let Some(s) = seed {
        p.seed = s;
    }
    Ok(p)
}

fn generate(a: GenerateArgs, quiet: bool) -> Result<()> {
    let params = district_params(a.config.as_deref(), a.seed)?;
    let pb = progress(quiet, 2, "generating district");
    let (twin, report) = swm_procgen::build_district(&params)?;
    pb.inc(1);
    swm_twin::write_swt(&twin, &a.output)?;
    pb.finish_and_clear();
    print_summary(&twin);
    print_report(&report, false);
    println!("wrote {}", a.output.display());
    Ok(())
}

fn demo(a: DemoArgs, quiet: bool) -> Result<()> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let params = district_params(None, a.seed)?;
    let pb = progress(quiet, 5, "generating district");
    let (twin, report) = swm_procgen::build_district(&params)?;
    pb.inc(1);
    pb.set_message("writing twin");
    let swt = a.output.join("default.swt");
    swm_twin::write_swt(&twin, &swt)?;
    let twin = load(&swt)?;
    pb.inc(1);
    pb.set_message("drawing map");
    let png = a.output.join("default-map.png");
    swm_twin::export::map::write_map_png(&twin, &Default::default(), &png)?;
    pb.inc(1);
    pb.set_message("exporting glTF");
    let glb = a.output.join("default.glb");
    swm_twin::export::gltf::write_glb(&twin, &glb)?;
    pb.inc(1);
    pb.set_message("exporting GeoJSON");
    let gj = a.output.join("default.geojson");
    swm_twin::export::geojson::write_geojson(&twin, &gj)?;
    pb.finish_and_clear();
    println!("embedded default district (seed {}):", params.seed);
    print_summary(&twin);
    print_report(&report, false);
    for p in [&swt, &png, &glb, &gj] {
        println!("wrote {}", p.display());
    }
    println!("done in {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn tile(a: TileArgs) -> Result<()> {
    use swm_ingest::osm::{Member, Node, OsmData, Relation, Way};
    if a.times == 0 || a.times > 64 {
        bail!("--times must be between 1 and 64 (got {})", a.times);
    }
    let src = match swm_ingest::detect_kind(&a.input)? {
        swm_ingest::SourceKind::OsmPbf => swm_ingest::osm_pbf::read_pbf(&a.input)?,
        swm_ingest::SourceKind::OsmXml => swm_ingest::osm_xml::read_xml(&a.input)?,
        _ => bail!("{}: tile takes an OSM file (.osm.pbf or .osm)", a.input.display()),
    };
    let Some(b) = src.bbox_wgs84() else { bail!("{}: no nodes to tile", a.input.display()) };
    let max_id = src
        .nodes
        .keys()
        .chain(src.ways.keys())
        .chain(src.relations.keys())
        .map(|id| id.unsigned_abs())
        .max()
        .unwrap_or(0) as i64;
    let stride = max_id + 1;
    let (dlon, dlat) = ((b[2] - b[0]) * 1.02, (b[3] - b[1]) * 1.02);
    let mut out = OsmData::new();
    for i in 0..a.times as i64 {
        for j in 0..a.times as i64 {
            let t = i * a.times as i64 + j;
            let id = |x: i64| x + t * stride * x.signum();
            for (k, n) in &src.nodes {
                let pos = LatLon::new(n.pos.lat_deg + j as f64 * dlat, n.pos.lon_deg + i as f64 * dlon);
                out.nodes.insert(id(*k), Node { pos, tags: n.tags.clone() });
            }
            for (k, w) in &src.ways {
                out.ways.insert(id(*k), Way { nodes: w.nodes.iter().map(|n| id(*n)).collect(), tags: w.tags.clone() });
            }
            for (k, r) in &src.relations {
                let members = r
                    .members
                    .iter()
                    .map(|m| Member { ty: m.ty, id: id(m.id), role: m.role.clone(), geometry: None })
                    .collect();
                out.relations.insert(id(*k), Relation { members, tags: r.tags.clone() });
            }
        }
    }
    let file = std::fs::File::create(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    swm_ingest::osm_xml::write_xml(&out, std::io::BufWriter::new(file))
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!(
        "wrote {} ({} nodes, {} ways, {} relations)",
        a.output.display(),
        out.nodes.len(),
        out.ways.len(),
        out.relations.len()
    );
    Ok(())
}
