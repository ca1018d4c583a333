#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what it needs, then checks formatting, lints, the sans-IO rule and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== sans-IO rule: no clock reads in the core modules"
if grep -rnE '(Instant|SystemTime)::now\(\)' src/core src/galene src/config src/app.rs src/http src/media \
    | grep -v '^\s*//' ; then
  echo "the sans-IO modules above read the clock; take 'now' as an argument instead" >&2
  exit 1
fi

echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== cargo test"
cargo test --all-targets
