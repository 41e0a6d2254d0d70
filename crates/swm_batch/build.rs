//! Records `git describe` (when the build runs inside a git checkout) for `code_version()`.

fn main() {
    let describe = std::process::Command::new("git")
        .args(["describe", "--always", "--tags"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=SWM_GIT_DESCRIBE={describe}");
    // Re-run when a commit moves a branch (not on every edit of the working tree).
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
