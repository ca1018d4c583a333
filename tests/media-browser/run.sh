#!/usr/bin/env bash
# Real browsers through sfubox: two headless Chromium pages (Debian's chromium, fake camera
# and microphone) join one group; each publishes and receives the other through the SFU.
# Passes when both decode video frames and receive audio packets (browser.mjs).
#
# Installs chromium (apt) and playwright-core (npm, no browser download) when missing
# (tests/browser/lib.sh).
# Usage: tests/media-browser/run.sh [--no-build]   (uses $SFUBOX_BIN or $CARGO_TARGET_DIR, default target/)
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=media-browser
. tests/browser/lib.sh
HERE=tests/media-browser
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sfubox-media-browser.XXXXXX")
browser_on_exit 'rm -rf "$WORK"'

browser_setup
browser_build_server "$@"

mkdir -p "$WORK/groups" "$WORK/data"
echo '{"wildcard-user": {"password": "pw", "permissions": "present"}}' >"$WORK/groups/g.json"
PORT=$(browser_free_port)
browser_start_server "$WORK/server.log" env RUST_LOG="${RUST_LOG:-info}" "$SFUBOX_BIN" -insecure \
  -http "127.0.0.1:$PORT" -groups "$WORK/groups" -data "$WORK/data" -static "$HERE/static"
browser_wait_http "http://127.0.0.1:$PORT/media-test.html" ||
  { browser_tail "server log" "$WORK/server.log" 50; exit 1; }

status=0
node "$HERE/browser.mjs" "http://127.0.0.1:$PORT" || status=$?
if [ $status -ne 0 ]; then
  browser_tail "server log" "$WORK/server.log" 50
fi
exit $status
