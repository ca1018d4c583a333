#!/usr/bin/env bash
# The SFU benchmark (issues 8, 17): sfubox, Janus 1.1 (Debian, VideoRoom, event_loops = 1), our
# null SFU (str0m per packet) and raw relay (no WebRTC stack per packet: the floor), and Galène
# when given, under the same synthetic WebRTC load from benches/loadgen, interleaved, median of 3.
#
#   benches/run.sh            full run (≈ 30–60 min on 2 cores): results in benches/results/
#   benches/run.sh --quick    smoke test (a few minutes; .ci/run uses it): results in
#                             $CARGO_TARGET_DIR/bench-quick (or target/bench-quick); fails only
#                             if a step cannot run or delivers no media; no timing is asserted
#                             (includes a short `capped` step on sfubox)
#   benches/run.sh --estimation
#                             downlink estimation on vs off (≈ 10 min on 2 cores): sfubox and
#                             sfubox -downlink-estimation=false (target `sfubox-noest`) on the
#                             `capped` scenario (a simulcast publisher, a quarter of the
#                             subscribers behind an emulated 300 kb/s, 300 ms, 2 %-loss link)
#                             and plain fan-out N = 10, 50; results in benches/results/estimation/
#   benches/run.sh --recording
#                             the cost of recording (about 5 min on 2 cores): the `meeting`
#                             scenario with 12 participants on sfubox, and on sfubox recording
#                             every stream (target `sfubox-rec`); results in
#                             benches/results/recording/ (docs/recording.md)
#
#   benches/run.sh --galene BIN
#                             adds Galène (a binary you built from its sources; it takes the
#                             same flags as sfubox) as a target, and its column to the tables
#
# Other flags: --no-janus, --no-callgrind, --out DIR; anything else is passed to `loadgen suite`
# ahead of this script's own defaults, so it wins (e.g. --fanout 1,10,50 --reps 1 --window 10,
# --targets sfubox,sfubox-noest, --capped 20 --cap-kbps 250).
#
# Layout: the target runs pinned to CPU 1 and the generator to CPU 0 (taskset). As root,
# everything runs in a private network namespace made here (`unshare -n`) with a veth pair
# carrying 127.0.0.2/32: Janus/libnice never gather on a loopback-flagged interface
# (benchmarks spec, part B3), and nothing is visible to other processes on the machine. The veth
# also carries 10.77.0.1/32, and IPv6 is off in the namespace, for Galène: pion's ICE never offers
# a loopback address, and Galène binds one socket per interface address, which fails on an IPv6
# link-local address still under duplicate-address detection.
# Janus is installed from Debian when missing (full mode) and runs from a private copy of
# /etc/janus edited as in part B2. Windows where the generator's core was > 80 % busy are
# reported invalid in the tables, never silently used.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
estimation=0
recording=0
janus=1
callgrind=1
out=""
galene=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --estimation) estimation=1 ;;
    --recording) recording=1 ;;
    --no-janus) janus=0 ;;
    --no-callgrind) callgrind=0 ;;
    --out) out="$2"; shift ;;
    --galene) galene="$2"; shift ;;
    *) extra+=("$1") ;;
  esac
  shift
done

target_dir="${CARGO_TARGET_DIR:-target}"
if [ -z "$out" ]; then
  if [ "$quick" = 1 ]; then out="$target_dir/bench-quick"
  elif [ "$estimation" = 1 ]; then out="benches/results/estimation"
  elif [ "$recording" = 1 ]; then out="benches/results/recording"
  else out="benches/results"; fi
fi
if [ "$estimation" = 1 ] || [ "$recording" = 1 ]; then
  # Only sfubox variants: no Janus, no callgrind pass.
  janus=0
  callgrind=0
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
scratch="$out/scratch"
mkdir -p "$scratch"

echo "== build (release): sfubox and the load generator"
cargo build --release --bin sfubox
loadgen="$(cargo bench --bench loadgen --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)"
[ -x "$loadgen" ] || { echo "loadgen executable not found" >&2; exit 1; }
sfubox="$(cd "$target_dir/release" && pwd)/sfubox"

root=0
[ "$(id -u)" = 0 ] && root=1

galene_args=()
if [ -n "$galene" ]; then
  [ -x "$galene" ] || { echo "--galene $galene: not an executable" >&2; exit 1; }
  galene_args=(--galene "$(cd "$(dirname "$galene")" && pwd)/$(basename "$galene")")
fi
targets="sfubox,null,raw"
[ -n "$galene" ] && targets="sfubox,galene,null,raw"
[ "$estimation" = 1 ] && targets="sfubox,sfubox-noest"
[ "$recording" = 1 ] && targets="sfubox,sfubox-rec"
janus_args=()
if [ "$janus" = 1 ]; then
  if ! command -v janus >/dev/null 2>&1 && [ "$quick" = 0 ] && [ "$root" = 1 ]; then
    echo "== installing Janus from Debian (spec B1)"
    mkdir -p "$scratch/apttmp"
    TMPDIR="$scratch/apttmp" apt-get update >/dev/null
    TMPDIR="$scratch/apttmp" DEBIAN_FRONTEND=noninteractive apt-get install -y janus janus-tools >/dev/null
  fi
  if command -v janus >/dev/null 2>&1 && [ "$root" = 1 ]; then
    echo "== Janus $(janus --version 2>/dev/null | sed -n 's/Janus version: //p'): private config (spec B2)"
    cfg="$scratch/janus-cfg"
    rm -rf "$cfg"
    cp -a /etc/janus "$cfg"
    sed -i \
      -e "s|^\(\s*\)configs_folder = .*|\1configs_folder = \"$cfg\"|" \
      -e 's|^\(\s*\)#\?interface = .*|\1interface = "127.0.0.2"|' \
      -e 's|^\(\s*\)#\?event_loops = .*|\1event_loops = 1|' \
      -e 's|^\(\s*\)#\?rtp_port_range = .*|\1rtp_port_range = "20000-20999"|' \
      -e 's|^\(\s*\)#ice_enforce_list = "eth0"$|\1ice_enforce_list = "127.0.0.2"|' \
      "$cfg/janus.jcfg"
    # Plugins: all but the VideoRoom; transports: HTTP and WebSocket only; no loggers or
    # event handlers (each `#disable` in order: plugins, transports, loggers, events).
    plugins=$(cd /usr/lib/x86_64-linux-gnu/janus/plugins 2>/dev/null && ls *.so 2>/dev/null | grep -v videoroom | paste -sd, -)
    events=$(cd /usr/lib/x86_64-linux-gnu/janus/events 2>/dev/null && ls *.so 2>/dev/null | paste -sd, -)
    awk -v plugins="$plugins" -v events="$events" '
      /^plugins: *\{/    { section = "plugins" }
      /^transports: *\{/ { section = "transports" }
      /^loggers: *\{/    { section = "loggers" }
      /^events: *\{/     { section = "events" }
      /^[[:space:]]*#disable = / {
        if (section == "plugins")    { sub(/#disable = .*/, "disable = \"" plugins "\"") }
        if (section == "transports") { sub(/#disable = .*/, "disable = \"libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so\"") }
        if (section == "loggers")    { sub(/#disable = .*/, "disable = \"libjanus_jsonlog.so\"") }
        if (section == "events" && events != "") { sub(/#disable = .*/, "disable = \"" events "\"") }
      }
      { print }' "$cfg/janus.jcfg" > "$cfg/janus.jcfg.new"
    mv "$cfg/janus.jcfg.new" "$cfg/janus.jcfg"
    sed -i 's|^\(\s*\)#\?ip = "192.168.0.1".*|\1ip = "127.0.0.1"|' "$cfg/janus.transport.http.jcfg"
    sed -i 's|^\(\s*\)#\?ws_ip = .*|\1ws_ip = "127.0.0.1"|' "$cfg/janus.transport.websockets.jcfg"
    targets="sfubox,janus,null,raw"
    [ -n "$galene" ] && targets="sfubox,galene,janus,null,raw"
    janus_args=(--janus-config "$cfg" --janus-ip 127.0.0.2)
  else
    echo "== Janus not available (needs root and the Debian package): no Janus column"
  fi
fi

quick_args=()
[ "$quick" = 1 ] && quick_args=(--quick)
[ "$estimation" = 1 ] && quick_args+=(--scenarios capped,fanout --fanout 10,50)
[ "$recording" = 1 ] && quick_args+=(--scenarios meeting --meeting 12)

# Runs the generator pinned to CPU 0 inside a private network namespace with 127.0.0.2 on a
# veth (as root), or directly on the host's loopback otherwise.
run_suite() {
  if [ "$root" = 1 ] && command -v unshare >/dev/null 2>&1; then
    unshare -n bash -c '
      set -e
      sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
      ip link set lo up
      ip link add jv0 type veth peer name jv1
      ip addr add 127.0.0.2/32 dev jv0
      ip addr add 10.77.0.1/32 dev jv0
      ip link set jv1 up
      ip link set jv0 up
      exec "$@"' bench taskset -c 0 "$loadgen" suite "$@"
  else
    taskset -c 0 "$loadgen" suite "$@"
  fi
}

echo "== load: targets $targets (results in $out)"
# The generator takes the first of a repeated flag: the caller's extra flags come first.
run_suite ${extra[@]+"${extra[@]}"} --out "$out" --targets "$targets" --sfubox "$sfubox" \
  ${galene_args[@]+"${galene_args[@]}"} ${janus_args[@]+"${janus_args[@]}"} \
  ${quick_args[@]+"${quick_args[@]}"}

if [ "$callgrind" = 1 ] && [ "$quick" = 0 ] && command -v valgrind >/dev/null 2>&1; then
  echo "== instructions per forwarded packet under callgrind (sfubox, null SFU, raw relay, fan-out 10)"
  run_suite --out "$out/callgrind" --targets sfubox,null,raw --sfubox "$sfubox" --callgrind \
    --scenarios fanout --fanout 10 --reps 1 --warmup 3 --window 10 || true
fi

echo
cat "$out/results.md"
[ -f "$out/callgrind/results.md" ] && { echo; echo "Callgrind:"; grep -E '^\| fanout' "$out/callgrind/results.md" || true; }
exit 0
