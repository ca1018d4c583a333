#!/usr/bin/env bash
# Real browsers through sfubox: two headless Chromium pages (Debian's chromium, fake camera
# and microphone) join one group; each publishes and receives the other through the SFU.
# Passes when both decode video frames and receive audio packets (browser.mjs).
#
# Installs chromium (apt) and playwright-core (npm, no browser download) when missing.
# Usage: tests/media-browser/run.sh [--no-build]   (uses $CARGO_TARGET_DIR, default target/)
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/media-browser
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sfubox-media-browser.XXXXXX")
SERVER_PID=

cleanup() {
  set +e
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v chromium >/dev/null; then
  echo "== media-browser: installing chromium"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  echo "== media-browser: installing playwright-core"
  (cd "$HERE" && npm install --no-audit --no-fund --silent)
fi

if [ "${1:-}" != "--no-build" ]; then
  cargo build --quiet --bin sfubox
fi
BIN=${CARGO_TARGET_DIR:-target}/debug/sfubox

mkdir -p "$WORK/groups" "$WORK/data"
echo '{"wildcard-user": {"password": "pw", "permissions": "present"}}' >"$WORK/groups/g.json"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=${RUST_LOG:-info} "$BIN" -insecure -http "127.0.0.1:$PORT" -groups "$WORK/groups" \
  -data "$WORK/data" -static "$HERE/static" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/media-test.html" >/dev/null 2>&1 && break
  sleep 0.1
done

status=0
node "$HERE/browser.mjs" "http://127.0.0.1:$PORT" || status=$?
if [ $status -ne 0 ]; then
  echo "== media-browser: server log:"
  tail -50 "$WORK/server.log"
fi
exit $status
