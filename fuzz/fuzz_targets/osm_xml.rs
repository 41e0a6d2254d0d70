//! OSM XML / Overpass reader: any bytes give data or a parse error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(data) = swm_ingest::osm_xml::parse_xml(bytes, Path::new("fuzz.osm")) {
        // Whatever was read must survive a write and read back unchanged.
        let mut written = Vec::new();
        if swm_ingest::osm_xml::write_xml(&data, &mut written).is_ok() {
            let back = swm_ingest::osm_xml::parse_xml(&written, Path::new("fuzz-rewritten.osm"))
                .expect("written OSM XML must parse");
            assert_eq!(back.nodes, data.nodes);
            assert_eq!(back.ways, data.ways);
            assert_eq!(back.relations, data.relations);
        }
    }
});
