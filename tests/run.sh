#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what it needs, then checks formatting, lints, the sans-IO rule and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean clone builds everything once: incremental caches would only cost disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The browser and web-client tests need Node.js; the GStreamer and Chromium packages are
# installed by the scripts that use them.
if ! command -v node >/dev/null 2>&1; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== local links in README.md and docs/"
tests/links.sh

echo "== sans-IO rule: no clock reads in the sans-IO modules (test code may take a t0)"
# Reports Instant::now()/SystemTime::now() outside comments, test files and #[cfg(test)] tails.
sans_io_paths=()
for path in src/core src/galene src/config src/http src/media src/streams src/record src/gst src/camus src/conn.rs src/app.rs; do
  [ -e "$path" ] && sans_io_paths+=("$path")
done
offenders=$(find "${sans_io_paths[@]}" -name '*.rs' ! -name '*tests.rs' ! -name 'sim.rs' \
  | xargs awk 'FNR == 1 { in_tests = 0 }
               /#\[cfg\(test\)\]/ { in_tests = 1 }
               !in_tests && !/^[[:space:]]*\/\// && /(Instant|SystemTime)::now\(\)/ { print FILENAME ":" FNR ": " $0 }')
if [ -n "$offenders" ]; then
  echo "$offenders"
  echo "the sans-IO modules above read the clock; take 'now' as an argument instead" >&2
  exit 1
fi

echo "== one crypto library: ring is in no target's dependency tree (AWS-LC only)"
if cargo tree --target all -e normal,build,dev --prefix none | grep -E '^ring v'; then
  echo "ring is back in the dependency tree (cargo tree -i ring --target all shows who pulls it in)" >&2
  exit 1
fi

echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== cargo test"
cargo test --all-targets

echo "== web client: library unit tests (node --test) and the meeting page in headless Chromium (tests/web/run.sh)"
tests/web/run.sh

echo "== administration: the admin page, invitations and their QR codes, change password, in headless Chromium (tests/admin/run.sh)"
tests/admin/run.sh

echo "== GStreamer examples' signalling: real webrtcbin and browser calls (tests/gst/run.sh)"
tests/gst/run.sh

echo "== Camus chat: both camus-chat client bundles in headless Chromium (tests/camus/run.sh)"
tests/camus/run.sh

echo "== Media: two headless Chromium pages see and hear each other through the SFU (tests/media-browser/run.sh)"
tests/media-browser/run.sh

echo "== WHIP and WHEP: the whip-whep package's clients in headless Chromium publish into and view a group (tests/whip/run.sh)"
tests/whip/run.sh
echo "== Recording: Chromium publishers recorded, every file checked with ffprobe/ffmpeg; the recordings browser; SIGTERM; a full disk (tests/recording/run.sh)"
tests/recording/run.sh

echo "== Shaped links: three Chromiums in network namespaces; a capped, a lossy and an uplink-capped path (tests/network/run.sh)"
tests/network/run.sh

echo "== fuzzing: every cargo-fuzz target for a fixed time from the committed corpus (tests/fuzz/run.sh)"
tests/fuzz/run.sh

echo "== soak: two rounds of 45 s churn against one server; descriptors settle, the second round leaves RSS where the first did; 1,000 idle TLS WebSockets cost ≤ 40 KiB each (tests/soak/run.sh)"
tests/soak/run.sh

echo "== media soak: 90 s of publishers and subscribers churning with RTP flowing; RSS and descriptors settle (tests/soak/media.sh)"
tests/soak/media.sh

echo "== ARM: release builds for aarch64 and armv7 under qemu-user (.status, a join, media through the SFU), .deb packages checked, the library's unit tests for aarch64 (tests/arm/run.sh)"
tests/arm/run.sh

echo "== benchmark smoke test: the quick mode must complete and deliver packets (benches/run.sh --quick)"
benches/run.sh --quick
