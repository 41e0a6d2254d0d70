#!/usr/bin/env bash
# Fuzz smoke test: runs every cargo-fuzz target in fuzz/ for a short time.
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to $FUZZ_SECONDS or 20; the targets default to all of
# them (`cargo fuzz list`). Installs cargo-fuzz from crates.io when it is missing.
# libFuzzer needs nightly-only compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1
# allows them. Corpora grow in fuzz/corpus/<target>, seeded from the small files in
# fuzz/seeds/<target>; a crash leaves its input in fuzz/artifacts/<target>/ and makes
# this script fail.
set -euo pipefail

seconds="${1:-${FUZZ_SECONDS:-20}}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    if [ -d "seeds/$target" ]; then
        cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    fi
done

# One build for all targets (debug assertions and overflow checks on).
cargo fuzz build --debug-assertions

failed=()
for target in "${targets[@]}"; do
    echo "fuzz-smoke: $target for ${seconds}s"
    if ! cargo fuzz run --debug-assertions "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -timeout=30 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]} (crashing inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets ran ${seconds}s each without a crash"
