#!/usr/bin/env bash
# Real calls through sfubox's GStreamer-examples signalling: GStreamer webrtcbin peers of ours
# (tests/gst/peer.py) register, call each other and check that video frames and audio
# buffers are decoded on every side.
#
#   1. 1-1 call, the caller offers;
#   2. 1-1 call with OFFER_REQUEST, the callee offers;
#   3. a room with three peers;
#   4. headless Chromium with a page of ours (tests/gst/page/, served by sfubox with -static)
#      calls a GStreamer peer (tests/gst/browser-call.mjs).
#
# libnice gathers no candidates on loopback, so the peers talk over a veth pair: the host
# side (10.77.0.1/24) holds sfubox and one peer, a network namespace (10.77.0.2/24) the
# others. Everything stays on this machine; the namespace and the veth pair are removed on
# exit. Needs root (ip netns). Installs the Debian packages it needs when they are missing;
# Chromium, node and playwright-core through the shared browser harness (tests/browser).
#
# Usage: tests/gst/run.sh [--no-build]   (uses $CARGO_TARGET_DIR, default target/)
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=gst
. tests/browser/lib.sh

NS=sfubox-gst-$$
HOST_IF=sfgst0-$$
NS_IF=sfgst1-$$
# Interface names are limited to 15 characters.
HOST_IF=${HOST_IF:0:15}
NS_IF=${NS_IF:0:15}
HOST_ADDR=10.77.0.1
NS_ADDR=10.77.0.2
PORT=8443
PYTHON=/usr/bin/python3 # Debian's python, where the GStreamer bindings live
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sfubox-gst.XXXXXX")

log() { browser_log "$@"; }

browser_on_exit 'rm -rf "$WORK"'
browser_on_exit 'ip link del "$HOST_IF" 2>/dev/null'
browser_on_exit 'ip netns del "$NS" 2>/dev/null'
browser_on_exit 'ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null'

browser_apt gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-nice gir1.2-gst-plugins-bad-1.0 gir1.2-gst-plugins-base-1.0 \
  gir1.2-gstreamer-1.0 python3-gi python3-gst-1.0 python3-websockets iproute2
browser_setup
browser_build_server "$@"
SFUBOX=$SFUBOX_BIN

log "network namespace $NS, veth $HOST_IF ($HOST_ADDR) <-> $NS_IF ($NS_ADDR)"
ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip addr add "$HOST_ADDR/24" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add "$NS_ADDR/24" dev "$NS_IF"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up

mkdir -p "$WORK/data" "$WORK/groups"
log "sfubox on https://$HOST_ADDR:$PORT (self-signed certificate)"
browser_start_server "$WORK/sfubox.log" env RUST_LOG="${RUST_LOG:-info}" "$SFUBOX" \
  -http "$HOST_ADDR:$PORT" -data "$WORK/data" -groups "$WORK/groups" -static "$PWD/tests/gst/page"
URL="wss://$HOST_ADDR:$PORT"
for _ in $(seq 100); do
  if "$PYTHON" - "$HOST_ADDR" "$PORT" <<'EOF' 2>/dev/null; then break; fi
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2).close()
EOF
  sleep 0.1
done

# Runs one peer on the host side or in the namespace; output goes to $WORK/<id>.log.
peer() {
  local where=$1 id=$2
  shift 2
  local command=("$PYTHON" tests/gst/peer.py --server "$URL" --our-id "$id" "$@")
  if [ "$where" = ns ]; then
    command=(ip netns exec "$NS" "${command[@]}")
  fi
  "${command[@]}" >"$WORK/$id.log" 2>&1
}

FAILED=0
# Waits for the given peers (pid:id pairs) and reports each.
expect_pass() {
  local scenario=$1
  shift
  local ok=1
  for entry in "$@"; do
    local pid=${entry%%:*} id=${entry#*:}
    if wait "$pid"; then
      echo "   $id: $(grep -E 'RESULT|^\[browser\] \{' "$WORK/$id.log" | tr '\n' ' ')"
    else
      ok=0
      echo "   $id FAILED; its log:"
      sed 's/^/     /' "$WORK/$id.log"
    fi
  done
  if [ $ok = 1 ]; then
    log "PASS: $scenario"
  else
    log "FAIL: $scenario"
    FAILED=1
  fi
}

log "1-1 call: host-side caller offers to a callee in the namespace"
peer ns callee1 & p1=$!
sleep 1
peer host caller1 --peer-id callee1 & p2=$!
expect_pass "1-1 call" "$p1:callee1" "$p2:caller1"

log "1-1 call with OFFER_REQUEST: the callee offers"
peer ns callee2 & p1=$!
sleep 1
peer ns caller2 --peer-id callee2 --remote-offerer & p2=$!
expect_pass "1-1 call with OFFER_REQUEST" "$p1:callee2" "$p2:caller2"

log "room with three peers"
peer host alice --room party --expect-peers 2 & p1=$!
sleep 1
peer ns bob --room party --expect-peers 2 & p2=$!
sleep 1
peer ns carol --room party --expect-peers 2 & p3=$!
expect_pass "three-peer room" "$p1:alice" "$p2:bob" "$p3:carol"

log "browser peer: headless Chromium on the host calls a GStreamer peer in the namespace"
peer ns gstpeer & p1=$!
sleep 1
node tests/gst/browser-call.mjs "https://$HOST_ADDR:$PORT" gstpeer >"$WORK/browser.log" 2>&1 & p2=$!
expect_pass "browser call" "$p1:gstpeer" "$p2:browser"

if [ $FAILED != 0 ]; then
  browser_tail "sfubox log" "$WORK/sfubox.log" 60
  exit 1
fi
echo "4 passed, 0 failed"
