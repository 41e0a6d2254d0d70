//! OSM PBF reader: any bytes give data or a parse error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    let _ = swm_ingest::osm_pbf::parse_pbf(bytes, Path::new("fuzz.osm.pbf"));
});
