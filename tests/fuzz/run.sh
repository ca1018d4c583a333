#!/usr/bin/env bash
# Runs every fuzz target for a fixed time (FUZZ_SECONDS each, default 20) from the committed
# seed corpus in tests/fuzz/corpus/<target>/. New inputs go to a scratch corpus that is thrown
# away, so the tree stays clean; FUZZ_MERGE=1 instead minimises them into the committed corpus,
# keeping an input only for a coverage edge nothing else reaches (commit the result when it
# stays small). A crash fails the script; its input is kept in
# tests/fuzz/artifacts/<target>/ for `cargo +nightly fuzz run <target> --fuzz-dir tests/fuzz
# <file>`. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); both are
# installed on demand. FUZZ_TARGETS="a b" runs only those.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-20}
fuzz_dir=tests/fuzz
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")}
echo "== building fuzz targets"
cargo +nightly fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $targets; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$scratch/$target" "$fuzz_dir/corpus/$target"
    status=0
    cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" "$target" \
        "$scratch/$target" "$fuzz_dir/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=1024 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$target.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$scratch/$target.log" >&2
        echo "fuzz target $target failed; the input is in $fuzz_dir/artifacts/$target/" >&2
        exit 1
    fi
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
        cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" "$target" \
            "$fuzz_dir/corpus/$target" "$scratch/$target" -- -merge=1 -use_counters=0 -use_cmp=0 \
            >/dev/null 2>&1
    fi
done
echo "== fuzzing done: no crashes"
