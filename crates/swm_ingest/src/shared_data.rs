//! Finding the project's shared sample data (real OSM extracts, DEMs) for tests and
//! benchmarks.
//!
//! The data lives outside the repository, in `shared/data` beside the workspace
//! (`<workspace>/../shared/data`), or wherever the `SWM_SHARED_DATA` environment
//! variable points. Tests call [`require_shared_data`]: where the data is missing it
//! skips the test (printing why), except under CI (`CI=true`), where missing data is a
//! failure rather than a silently skipped test.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the location of the shared data directory.
pub const SHARED_DATA_ENV: &str = "SWM_SHARED_DATA";

/// The shared data directory: `$SWM_SHARED_DATA` when set, else `<workspace>/../shared/data`.
/// `None` when that directory does not exist.
pub fn shared_data_dir() -> Option<PathBuf> {
    candidate_dir().filter(|dir| dir.is_dir())
}

/// Where the shared data directory is expected, whether or not it exists.
fn candidate_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(SHARED_DATA_ENV) {
        return Some(PathBuf::from(dir));
    }
    // This crate lives at <workspace>/crates/swm_ingest.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.parent()?;
    Some(workspace.parent()?.join("shared").join("data"))
}

/// The path of `name` (relative to the shared data directory, e.g.
/// `"seoul/yeouido.osm.pbf"`), for a test that needs it.
///
/// Returns `None` after printing a skip reason to stderr when the file is missing and
/// the environment variable `CI` is not `true`; panics with the same reason under CI.
/// Meant for tests and benchmarks only.
pub fn require_shared_data(name: &str) -> Option<PathBuf> {
    let dir = candidate_dir();
    if let Some(path) = dir.as_ref().map(|d| d.join(name))
        && path.is_file()
    {
        return Some(path);
    }
    let looked = match &dir {
        Some(d) => d.join(name).display().to_string(),
        None => format!("<workspace>/../shared/data/{name}"),
    };
    let reason = format!("shared test data {name} not found at {looked} (set {SHARED_DATA_ENV} to the data directory)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}; CI=true, so missing test data is an error");
    }
    eprintln!("skipping: {reason}");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osm_shared_data_dir_points_beside_the_workspace() {
        let dir = candidate_dir().unwrap();
        if std::env::var_os(SHARED_DATA_ENV).is_none() {
            assert!(dir.ends_with("shared/data"), "{}", dir.display());
        }
        assert_eq!(shared_data_dir().is_some(), dir.is_dir());
    }
}
