#!/usr/bin/env bash
# The software-AES penalty: what a board without AES instructions (the Raspberry Pi 4's
# Cortex-A72 has no ARMv8 crypto extensions) costs per forwarded packet, measured on x86-64.
#
#   benches/software-aes.sh [ROUNDS]     (default 7 rounds, ≈ 1 s each; prints a table)
#
# FORWARD_BENCH=path uses an already built forward bench. As root, each run is pinned to CPU 1
# at real-time priority (`chrt -f 50 taskset -c 1`, about a second each) so that other work on a
# shared machine does not stretch the engine time it measures.
# Runs `cargo bench --bench forward` (one VP8+Opus publisher, 1/10/50 subscribers, engine time
# only) alternately as is and with AWS-LC's CPU capabilities masked through OPENSSL_ia32cap:
# AES-NI and PCLMULQDQ (CPUID 1 ECX bits 25 and 1), SHA-NI (CPUID 7 EBX bit 29), VAES and
# VPCLMULQDQ (CPUID 7 ECX bits 9 and 10). AWS-LC then runs SRTP's AES and SHA-1 on its
# constant-time vector-permutation and plain code, as it does on a board without crypto
# extensions. Rounds are interleaved so both variants see the same machine load; the best round
# of each is kept (interference only makes a round slower). The ratio of the best datagrams per
# second is the CPU-per-packet penalty to expect.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
mask='~0x200000200000000:~0x60020000000'

bench=${FORWARD_BENCH:-$(cargo bench --locked --bench forward --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)}
[ -x "$bench" ] || { echo "forward bench executable not found" >&2; exit 1; }
grep -qw aes /proc/cpuinfo || echo "note: this CPU has no AES-NI; both variants run software AES" >&2

shield=()
if [ "$(id -u)" = 0 ] && command -v chrt >/dev/null && command -v taskset >/dev/null; then
  shield=(chrt -f 50 taskset -c 1)
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  "${shield[@]}" "$bench" > "$out/hw.$round"
  OPENSSL_ia32cap=$mask "${shield[@]}" "$bench" > "$out/sw.$round"
done

# Columns of the forward bench: subs, pkts in, dgrams out, in pkts/s, out dgrams/s, ...
python3 - "$out" "$rounds" <<'EOF'
import sys
out, rounds = sys.argv[1], int(sys.argv[2])
def best(kind):
    rates = {}
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{kind}.{r}").read().splitlines()[1:]:
            cols = line.split()
            subs, rate = int(cols[0]), float(cols[4])
            rates[subs] = max(rates.get(subs, 0.0), rate)
    return rates
hw, sw = best("hw"), best("sw")
print(f"best of {rounds} interleaved rounds, datagrams out per second of engine time")
print("| subscribers | AES-NI, SHA-NI (as is) | masked (software AES) | CPU per packet, software / hardware |")
print("|---|---|---|---|")
for subs in sorted(hw):
    print(f"| {subs} | {hw[subs]:,.0f} | {sw[subs]:,.0f} | {hw[subs] / sw[subs]:.2f} × |")
EOF
