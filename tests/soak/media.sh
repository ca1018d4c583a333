#!/usr/bin/env bash
# Soak with media flowing (tests/media_soak.rs): the sfubox binary under a churn of publishers
# and subscribers joining and leaving every few seconds with RTP flowing, renegotiations,
# layer switches and abrupt disconnects; RSS must stay within 10 % of its value after the
# first minute (50 % for runs under 5 minutes) and descriptors return to the baseline.
# MEDIA_SOAK_SECONDS sets the length (default 90, what CI runs); SFUBOX_BIN the server binary
# (default: the debug binary cargo builds for the tests; for the full run
# `MEDIA_SOAK_SECONDS=600 SOAK_PROFILE=release tests/soak/media.sh`).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${SOAK_PROFILE:-debug}" = release ] && [ -z "${SFUBOX_BIN:-}" ]; then
    cargo build --release --quiet --bin sfubox
    export SFUBOX_BIN=$PWD/${CARGO_TARGET_DIR:-target}/release/sfubox
fi
export MEDIA_SOAK_SECONDS=${MEDIA_SOAK_SECONDS:-90}
echo "== media soak: ${MEDIA_SOAK_SECONDS}s against ${SFUBOX_BIN:-the debug binary}"
cargo test --quiet --test media_soak -- --ignored --nocapture
