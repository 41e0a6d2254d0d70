//! Running the `swm` binary from tests.
#![allow(dead_code)] // Each test file uses a different subset.

use std::path::Path;
use std::process::{Command, Output};

pub fn swm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swm")).args(args).arg("--quiet").output().expect("swm runs")
}

/// Runs `swm args`, asserts success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = swm(args);
    assert!(
        out.status.success(),
        "swm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `swm args`, asserts a clean failure (no panic), returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = swm(args);
    assert!(!out.status.success(), "swm {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic is not an error message: {err}");
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
