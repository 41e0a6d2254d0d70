//! `swm view`: forwards to the `swm-viewer` binary (crate `swm_viewer`), so that the CLI
//! does not link bevy. The viewer is looked for next to this executable, then on `PATH`.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// Arguments of `swm view`, passed to `swm-viewer` unchanged.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ViewArgs {
    /// Everything after `view` (see `swm view --help`, which is swm-viewer's help).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// The viewer binary's file name on this platform.
fn viewer_name() -> String {
    format!("swm-viewer{}", std::env::consts::EXE_SUFFIX)
}

/// Where `swm-viewer` is: beside the running executable, else the first match on `PATH`.
pub fn find_viewer() -> Option<PathBuf> {
    let name = viewer_name();
    if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.to_path_buf())) {
        let beside = dir.join(&name);
        if beside.is_file() {
            return Some(beside);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(&name)).find(|p| p.is_file())
}

/// Runs the viewer with `a.args` and returns its exit status as an error when it failed.
pub fn view_cmd(a: ViewArgs) -> Result<()> {
    let Some(viewer) = find_viewer() else {
        bail!(
            "{} not found next to {} or on PATH; build it with `cargo build --release -p swm_viewer` \
             (bevy: the first build takes a while), or install it with `cargo install --path crates/swm_viewer`",
            viewer_name(),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "swm".into())
        );
    };
    let status = std::process::Command::new(&viewer)
        .args(&a.args)
        .status()
        .with_context(|| format!("starting {}", viewer.display()))?;
    if !status.success() {
        bail!("{} exited with {status}", viewer.display());
    }
    Ok(())
}
