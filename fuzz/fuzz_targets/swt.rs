//! `.swt` twin reader: any bytes give a twin or a decode error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = swm_twin::read_swt_bytes(bytes, "fuzz");
});
