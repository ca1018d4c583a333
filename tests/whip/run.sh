#!/usr/bin/env bash
# WHIP and WHEP with clients nobody here wrote: the npm package whip-whep (its WHIPClient and
# WHEPClient, installed from npm at test time, served as they come) in headless Chromium
# with the fake camera and microphone, against a real sfubox.
#
# - A WHIP page publishes into group g: a Galène-protocol member page sees the user `whip`
#   join, decodes its video (frames decoded, a picture that is not black and moves) and
#   receives its audio; the WHIP page's stop() (DELETE) makes the user leave.
# - A member page publishes its camera: a WHEP page (?user=camera) decodes it.
# - A WHIP page with a bearer token appears under the token's username; its resource refuses
#   DELETE without that token (403).
# - Bad requests get Galène's status codes (node fetch): no SDP, wrong content type, wrong
#   token, unknown resource, oversized body, unknown group, wrong method, malformed id.
#
# Installs chromium (apt) and playwright-core (npm, no browser download) when missing
# (tests/browser/lib.sh), and whip-whep from npm into a temporary directory.
# Usage: tests/whip/run.sh [--no-build]   (uses $SFUBOX_BIN or $CARGO_TARGET_DIR, default target/)
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=whip
. tests/browser/lib.sh
HERE=tests/whip
WHIP_WHEP_VERSION=1.2.0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sfubox-whip.XXXXXX")
browser_on_exit 'rm -rf "$WORK"'

browser_setup
browser_build_server "$@"

browser_log "installing whip-whep@$WHIP_WHEP_VERSION from npm"
npm install --prefix "$WORK/npm" --no-audit --no-fund --no-save --loglevel=error \
  "whip-whep@$WHIP_WHEP_VERSION" >/dev/null
mkdir -p "$WORK/static" "$WORK/groups" "$WORK/data/var"
cp "$HERE"/static/* "$WORK/static/"
cp "$WORK/npm/node_modules/whip-whep/whip.js" "$WORK/npm/node_modules/whip-whep/whep.js" "$WORK/static/"

cat >"$WORK/groups/g.json" <<'JSON'
{
    "users": {
        "whip": {"password": "", "permissions": "present"},
        "whep": {"password": "", "permissions": "observe"}
    },
    "wildcard-user": {"password": "pw", "permissions": "present"}
}
JSON
echo '{"token":"secret-token","group":"g","username":"obs-studio","permissions":["present"],"expires":"2099-01-01T00:00:00Z"}' \
  >"$WORK/data/var/tokens.jsonl"
echo '[{"urls": ["stun:127.0.0.1:9"]}]' >"$WORK/data/ice-servers.json"

PORT=$(browser_free_port)
browser_start_server "$WORK/server.log" env RUST_LOG="${RUST_LOG:-info,sfubox::whip=debug}" \
  "$SFUBOX_BIN" -insecure -http "127.0.0.1:$PORT" -groups "$WORK/groups" -data "$WORK/data" \
  -static "$WORK/static"
browser_wait_http "http://127.0.0.1:$PORT/member.html" ||
  { browser_tail "server log" "$WORK/server.log" 50; exit 1; }

status=0
node "$HERE/browser.mjs" "http://127.0.0.1:$PORT" || status=$?
if [ $status -ne 0 ]; then
  browser_tail "server log" "$WORK/server.log" 80
fi
exit $status
