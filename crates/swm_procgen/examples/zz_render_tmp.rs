fn main() {
    let seed: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let params = swm_procgen::DistrictParams::embedded_default().with_seed(seed);
    let t = std::time::Instant::now();
    let g = swm_procgen::generate(&params);
    let gen_s = t.elapsed().as_secs_f64();
    let (twin, _r) = swm_procgen::build_district(&params).unwrap();
    eprintln!(
        "gen {gen_s:.3}s nodes {} ways {} buildings {} lanes {} signals {}",
        g.osm.nodes.len(),
        g.osm.ways.len(),
        twin.buildings.len(),
        twin.lanes.len(),
        twin.signals.len()
    );
    let opts = swm_twin::export::map::MapOptions { width_px: 1600, ..Default::default() };
    swm_twin::export::map::write_map_png(&twin, &opts, std::path::Path::new(&format!("/tmp/district_{seed}.png")))
        .unwrap();
}
