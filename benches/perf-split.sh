#!/usr/bin/env bash
# Where each target's CPU per forwarded packet goes, kernel or user space (issue 17): runs the
# fan-out scenario once per target through benches/run.sh (same layout: private network
# namespace, target on CPU 1, generator on CPU 0) with a 20 s window, and records the target
# process with `perf record` for 8 s in the middle of that window. Needs root and perf.
#
#   benches/perf-split.sh [--fanout N] [--targets raw,null,sfubox-noest,sfubox] [--galene BIN]
#                         [--out DIR]
#
# Prints one line per target: µs per forwarded packet, and the kernel and user shares of it
# (user space includes libc). Results, logs and perf.data per target in DIR (default
# target/perf-split). Single runs: read them as ± 10 %.
set -euo pipefail
cd "$(dirname "$0")/.."

fanout=100
targets="raw,null,sfubox-noest,sfubox"
galene=""
out="${CARGO_TARGET_DIR:-target}/perf-split"
while [ $# -gt 0 ]; do
  case "$1" in
    --fanout) fanout="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --galene) galene="$2"; targets="$targets,galene"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "perf-split.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
command -v perf >/dev/null || { echo "perf-split.sh: needs perf (apt install linux-perf)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "perf-split.sh: needs root (network namespace, perf on any pid)" >&2; exit 1; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# Build once here, so that run.sh's own build below is a no-op and the target starts at once.
cargo build --release --bin sfubox
cargo bench --bench loadgen --no-run

for target in ${targets//,/ }; do
  case "$target" in
    raw) pattern="raw-relay --http" ;;
    null) pattern="null-sfu --http" ;;
    *) pattern="-http 127.0.0.1:" ;;
  esac
  dir="$out/$target-$fanout"
  rm -rf "$dir"
  mkdir -p "$dir"
  galene_args=()
  [ -n "$galene" ] && galene_args=(--galene "$galene")
  benches/run.sh --no-janus --no-callgrind --out "$dir" ${galene_args[@]+"${galene_args[@]}"} \
    --targets "$target" --scenarios fanout --fanout "$fanout" --reps 1 --warmup 5 --window 20 \
    > "$dir/run.log" 2>&1 &
  suite=$!
  # Wait for the target to start, then for its subscribers to join and the warm-up to pass.
  pid=""
  for _ in $(seq 1 600); do
    pid=$(pgrep -f -- "$pattern" | head -1 || true)
    [ -n "$pid" ] && break
    sleep 0.2
  done
  if [ -z "$pid" ]; then
    wait "$suite" || true
    echo "$target: did not start (see $dir/run.log)"
    continue
  fi
  sleep 12
  perf record -F 2000 -p "$pid" -o "$dir/perf.data" -- sleep 8 > "$dir/perf.log" 2>&1 || true
  wait "$suite" || true
  line=$(grep -E "^ +[0-9]+ pkt/s" "$dir/run.log" | tail -1 || true)
  us=$(echo "$line" | sed -nE 's/.* ([0-9.]+) µs\/pkt.*/\1/p')
  kernel=$(perf report --no-children --sort dso -i "$dir/perf.data" 2>/dev/null \
    | awk '/\[kernel.kallsyms\]/ { sub("%", "", $1); print $1 }')
  if [ -z "$us" ] || [ -z "$kernel" ]; then
    echo "$target: no measurement (see $dir/run.log and $dir/perf.log)"
    continue
  fi
  awk -v t="$target" -v n="$fanout" -v us="$us" -v k="$kernel" 'BEGIN {
    printf "%-13s N=%-4s %6.2f µs/pkt = kernel %5.2f + user %5.2f (kernel %.1f %%)\n",
      t, n, us, us * k / 100, us * (100 - k) / 100, k }'
done
