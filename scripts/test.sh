#!/usr/bin/env bash
# The whole test suite: set up, then formatting, lints, the API docs' links, every test of
# every crate with every feature (GDAL included), and a short fuzzing smoke run of the parsers.
# Tests on real Seoul data read ../shared/data (or $SWM_SHARED_DATA); with CI=true they fail
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The Vulkan loader (lavapipe, for the GPU tests) wants a runtime directory.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="/tmp/xdg-runtime-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo doc (a broken or ambiguous link is an error)"
# The binaries first, then the libraries: the `swm` binary and the `swm` library would write
# the same pages in one run; the libraries' pages are the ones kept. The viewer's binary is
# left out: documenting it documents its library again, onto the same pages.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --bins --exclude swm_viewer
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --lib
echo "== cargo test"
cargo test --workspace --all-features
if [ "${SWM_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzz smoke"
  scripts/fuzz-smoke.sh "${SWM_FUZZ_SECONDS:-15}"
fi
echo "all checks passed"
