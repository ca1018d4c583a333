#!/usr/bin/env bash
# Real browsers through sfubox over shaped links: three headless Chromiums (Debian's chromium,
# fake camera and microphone), each in its own network namespace, meet in group "g" of an sfubox
# running in a fourth. One publishes with simulcast, two receive; the driver (shaped.mjs) shapes
# the links with tc/nftables and asserts on what the pages' getStats() report.
#
# Topology (names carry the prefix $NETTEST_NS_PREFIX, default "sfubox-nt-"):
#
#   srv:  sfubox -insecure -http 198.18.0.1:8443 (address on srv's lo; UDP media on the same port)
#         to-pub  198.18.1.1/24 ── veth ── to-srv 198.18.1.2/24  pub:  publisher
#         to-sub1 198.18.2.1/24 ── veth ── to-srv 198.18.2.2/24  sub1: the shaped subscriber
#         to-sub2 198.18.3.1/24 ── veth ── to-srv 198.18.3.2/24  sub2: unshaped control subscriber
#
#   198.18.0.0/15 is the range reserved for network benchmarks (RFC 2544). A browser namespace has
#   lo and one route, to the server's /32: no default route, so nothing can leave for any other
#   address (the driver checks that each Chromium's pid sits in its namespace and that it cannot
#   reach the root namespace's loopback). The driver runs in the root namespace and starts each
#   Chromium through a generated wrapper (exec ip netns exec NS chromium "$@") given to
#   Playwright as executablePath; Playwright speaks to it over a pipe, not over the network.
#
# Shaping (shape.sh):
#   downlink cap: tbf on srv's to-sub1 egress, rate 300kbit burst 16kb latency 300ms. The rate is a
#     poor home link; latency 300ms bounds the queue to 300 ms of data at that rate (≈11 KB plus the
#     bucket), the depth of a bufferbloated DSL/Wi-Fi router queue, after which packets are
#     tail-dropped as a real bottleneck drops them; burst 16kb (≈11 full packets) lets one video
#     frame's packets leave back to back like a Wi-Fi aggregate, and is far above the rate/HZ
#     minimum, so the long-run rate is the cap and not a timer artefact.
#   uplink cap: the same tbf (rate 400kbit) on pub's to-srv egress, inside pub's namespace.
#   loss: nftables "meta l4proto udp numgen random mod 100 < 5 drop" in sub1's input AND output
#     hooks: 5 % of UDP (media, RTCP, STUN) in each direction; the WebSocket (TCP) is untouched.
#
# Scenarios (default: all, in this order, with one set of browsers):
#   unshaped  warm-up and baseline: both subscribers decode the high layer (width >= 640) at
#             >= 10 fps, no freezes, < 1 % loss; the publisher sends both simulcast layers.
#   cap300    cap sub1's downlink to 300 kb/s: sub1 drops to the low layer (width < 640) within
#             10 s, then over 20 s decodes >= 10 fps, freezes <= 1 s, audio loss < 1 %; sub2
#             stays >= 640. Proves per-subscriber bandwidth estimation and layer switching.
#   uncap     (after cap300) lift the cap: sub1 is back to >= 640 within 20 s. Proves probing up.
#   loss5     5 % random loss on sub1's link: >= 10 fps over 20 s, freezes <= 1 s. Proves NACK/RTX
#             and keyframe recovery keep video smooth (and that loss alone is no reason to stall).
#   upcap400  cap pub's uplink to 400 kb/s: the publisher's video (sum over rids of bytesSent)
#             averages < 400 kb/s over the last 10 s of 30 s, and both receivers decode >= 10 fps
#             with <= 2 s of freezes in the last 20 s. Proves uplink estimation (the server's TWCC
#             feedback) and that receivers follow the layers the publisher can still send (under
#             the cap Chromium keeps l at 20 fps and starves h to a few fps, which Chromium's
#             freeze counter alone does not flag: hence the fps floor).
#
# Measures (shaped.mjs): every page's getStats() is sampled once a second; rates come from the
# deltas of the cumulative counters over a window. "freeze s" is the growth of
# totalFreezesDuration plus the freeze still going on at the window's end (time since the video
# element last presented a frame, requestVideoFrameCallback) less the one going on at its start:
# Chromium adds a freeze to totalFreezesDuration only once it ends. Audio loss is Chromium's
# inbound-rtp packetsLost (no RTX on audio). A full run takes about 2 minutes.
#
# Usage: tests/network/run.sh [--no-build] [scenario...]     (as root)
# Environment:
#   SFUBOX_BIN=path   binary to run (skips the build); default: cargo build --bin sfubox, then
#                     ${CARGO_TARGET_DIR:-target}/debug/sfubox
#   NETTEST_KEEP=1    keep the work directory (server log, page logs, samples.json) and say where
#   NETTEST_TIMELINE=1  print the per-second timeline of every scenario (always printed on failure)
#   RUST_LOG          server log filter (default info)
#   CHROMIUM          browser binary (default /usr/bin/chromium)
# Installs chromium, nftables, iproute2 (apt) and playwright-core (npm, no browser download)
# when missing (the shared browser harness, tests/browser/lib.sh). Exits non-zero when any assertion fails, printing the tail of the server log.
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=network
. tests/browser/lib.sh
HERE=tests/network
P=${NETTEST_NS_PREFIX:-sfubox-nt-}
export NETTEST_NS_PREFIX=$P
PEERS=(pub sub1 sub2)
SRV_IP=198.18.0.1
PORT=8443

build=1
scenarios=()
for a in "$@"; do
  case "$a" in
  --no-build) build=0 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  unshaped|cap300|uncap|loss5|upcap400) scenarios+=("$a") ;;
  *) echo "network test: unknown scenario $a (known: unshaped cap300 uncap loss5 upcap400)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "network test: needs root (network namespaces, tc, nftables)" >&2
  exit 1
fi

if [ -d /work/scratch ] && [ -w /work/scratch ]; then
  WORK_ROOT=/work/scratch
else
  WORK_ROOT=${TMPDIR:-/tmp}
fi
WORK=$(mktemp -d "$WORK_ROOT/sfubox-network.XXXXXX")
NODE_PID=

kill_ns_pids() { # processes left inside our namespaces (an aborted run's Chromium or server)
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    sleep 0.5
    pids=$(ip netns pids "$1" 2>/dev/null || true)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  fi
}

delete_namespaces() {
  for ns in "${PEERS[@]}" srv; do
    if ip netns list | grep -qE "^$P$ns( |\$)"; then
      kill_ns_pids "$P$ns"
      ip netns del "$P$ns" 2>/dev/null || true
    fi
  done
}

remove_work() {
  if [ "${NETTEST_KEEP:-}" = 1 ]; then
    echo "== network: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}

stop_node() {
  if [ -n "$NODE_PID" ]; then
    kill "$NODE_PID" 2>/dev/null
    wait "$NODE_PID" 2>/dev/null
  fi
}

# The cleanup (lib.sh's EXIT trap) runs these last first: the driver (registered when it
# starts), the server, the namespaces, then the work directory.
browser_on_exit remove_work
browser_on_exit delete_namespaces
trap 'exit 130' INT TERM

command -v nft >/dev/null || browser_apt nftables
command -v tc >/dev/null && command -v ip >/dev/null || browser_apt iproute2
browser_setup
if [ $build = 0 ]; then browser_build_server --no-build; else browser_build_server; fi
BIN=$SFUBOX_BIN

# Namespaces: leftovers of an aborted run first.
delete_namespaces
ip netns add "${P}srv"
for ns in srv "${PEERS[@]}"; do
  [ "$ns" = srv ] || ip netns add "$P$ns"
  ip netns exec "$P$ns" ip link set lo up
  ip netns exec "$P$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip netns exec "${P}srv" ip addr add "$SRV_IP/32" dev lo
i=0
for peer in "${PEERS[@]}"; do
  i=$((i + 1))
  ip link add "to-$peer" netns "${P}srv" type veth peer name to-srv netns "$P$peer"
  ip netns exec "${P}srv" ip addr add "198.18.$i.1/24" dev "to-$peer"
  ip netns exec "${P}srv" ip link set "to-$peer" up
  ip netns exec "$P$peer" ip addr add "198.18.$i.2/24" dev to-srv
  ip netns exec "$P$peer" ip link set to-srv up
  ip netns exec "$P$peer" ip route add "$SRV_IP/32" via "198.18.$i.1"
done

mkdir -p "$WORK/groups" "$WORK/data"
echo '{"wildcard-user": {"password": "pw", "permissions": "present"}}' >"$WORK/groups/g.json"
echo "== network: $BIN in ${P}srv at http://$SRV_IP:$PORT, work dir $WORK"
browser_start_server "$WORK/server.log" ip netns exec "${P}srv" env RUST_LOG="${RUST_LOG:-info}" \
  "$BIN" -insecure -http "$SRV_IP:$PORT" -groups "$WORK/groups" -data "$WORK/data" -static "$HERE/static"
for peer in "${PEERS[@]}"; do
  if ! BROWSER_CURL_PREFIX="ip netns exec $P$peer" browser_wait_http "http://$SRV_IP:$PORT/net-test.html"; then
    echo "== network: the server is not reachable from $P$peer"
    browser_tail "server log" "$WORK/server.log" 50
    exit 1
  fi
done

# In the background so that a TERM to this script runs the cleanup at once (bash runs traps
# only between foreground commands, but interrupts wait).
status=0
NETTEST_URL="http://$SRV_IP:$PORT" NETTEST_WORK="$WORK" NETTEST_SHAPE="$PWD/$HERE/shape.sh" \
  node "$HERE/shaped.mjs" "${scenarios[@]}" &
NODE_PID=$!
browser_on_exit stop_node
wait "$NODE_PID" || status=$?
NODE_PID=
if [ $status -ne 0 ]; then
  browser_tail "server log" "$WORK/server.log" 60
fi
exit $status
