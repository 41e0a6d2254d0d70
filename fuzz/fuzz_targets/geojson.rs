//! GeoJSON reader: any bytes give data or a parse error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use swm_ingest::{Report, VectorMapping};

fuzz_target!(|bytes: &[u8]| {
    let mut report = Report::default();
    let _ =
        swm_ingest::vector::parse_geojson(bytes, Path::new("fuzz.geojson"), 0, &VectorMapping::default(), &mut report);
});
