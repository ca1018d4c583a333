#!/usr/bin/env bash
# ARM for real: release builds for the Raspberry Pi targets, run under qemu-user, and their
# .deb packages checked. What CI runs (tests/run.sh calls this script):
#
#   1. installs what it needs, idempotently: the rustup targets, Debian's cross compilers and
#      C libraries, qemu-user, systemd (for systemd-analyze), and cargo-deb (cargo install);
#   2. builds `--release` binaries for aarch64-unknown-linux-gnu and
#      armv7-unknown-linux-gnueabihf with the cross compilers (the recipe of
#      docs/raspberry-pi.md, no Docker);
#   3. per target, in a private network namespace, under qemu-aarch64 / qemu-arm with the
#      target's sysroot: checks the binary is an ARM ELF, starts it, gets a group's .status,
#      joins the group over Galène's protocol, then lets the load generator (benches/loadgen,
#      built for the host) publish VP8 + Opus to it while two subscribers join, and fails unless
#      packets reach both;
#   4. `cargo deb` for arm64 and armhf; each package is unpacked with dpkg-deb: control fields,
#      file list, modes and owners, the maintainer scripts, and the systemd unit with
#      `systemd-analyze verify` inside the unpacked tree;
#   5. the library's unit tests for aarch64 under qemu (CARGO_TARGET_..._RUNNER), unless
#      ARM_UNIT_TESTS=0.
#
# ARM_TARGETS="aarch64-unknown-linux-gnu" limits the targets. Builds go to the usual target
# directory (target/<triple>/release/), sharing the host's build-script outputs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir=$(pwd)
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
target_dir=$(cd "$target_dir" && pwd)
targets=${ARM_TARGETS:-"aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf"}
unit_tests=${ARM_UNIT_TESTS:-1}
# The cargo-deb release this script installs when none is on the PATH.
cargo_deb_version=3.8.0

phase_started=$SECONDS
phase() {
  echo "   ($((SECONDS - phase_started)) s)"
  phase_started=$SECONDS
  echo "== arm: $*"
}

# Per target: the GNU triple of the Debian cross toolchain, the Debian architecture, the qemu
# binary, the ELF machine, and the cargo environment-variable infix.
gnu_triple() { case "$1" in aarch64-*) echo aarch64-linux-gnu ;; armv7-*) echo arm-linux-gnueabihf ;; esac; }
deb_arch() { case "$1" in aarch64-*) echo arm64 ;; armv7-*) echo armhf ;; esac; }
qemu_of() { case "$1" in aarch64-*) echo qemu-aarch64 ;; armv7-*) echo qemu-arm ;; esac; }
elf_machine() { case "$1" in aarch64-*) echo aarch64 ;; armv7-*) echo arm ;; esac; }
env_infix() { echo "$1" | tr 'a-z-' 'A-Z_'; }

echo "== arm: tools (rustup targets, cross compilers, qemu-user, systemd-analyze, cargo-deb)"
packages=(qemu-user systemd)
for target in $targets; do
  case "$target" in
    aarch64-*) packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    armv7-*) packages+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
    *) echo "unsupported target $target" >&2; exit 1 ;;
  esac
done
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
installed_targets=$(rustup target list --installed)
for target in $targets; do
  grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done
if ! cargo deb --version >/dev/null 2>&1; then
  # Built once per machine (≈ 2–3 min on 2 cores); later runs find it in ~/.cargo/bin.
  cargo install --locked cargo-deb --version "$cargo_deb_version"
fi

# The cross recipe of docs/raspberry-pi.md: the target's linker, and its C compiler and
# archiver for the C crypto (aws-lc-sys, built by the `cc` crate); qemu runs test binaries.
for target in $targets; do
  gnu=$(gnu_triple "$target")
  infix=$(env_infix "$target")
  export "CARGO_TARGET_${infix}_LINKER=$gnu-gcc"
  export "CARGO_TARGET_${infix}_RUNNER=$(qemu_of "$target") -L /usr/$gnu"
  export "CC_${target//-/_}=$gnu-gcc" "AR_${target//-/_}=$gnu-ar"
done

for target in $targets; do
  phase "release build for $target"
  cargo build --release --locked --target "$target" --bin sfubox
  size=$(stat -c %s "$target_dir/$target/release/sfubox")
  echo "   $target/release/sfubox: $size bytes (stripped)"
done

phase "release build of the load generator (host)"
loadgen="$(cargo bench --bench loadgen --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)"
[ -x "$loadgen" ] || { echo "loadgen executable not found" >&2; exit 1; }

scratch="$target_dir/arm-test"
rm -rf "$scratch"
mkdir -p "$scratch"

# One target's run under qemu, inside a private network namespace (as root; on the host's
# loopback otherwise): .status and a join, then media through it with the load generator.
run_under_qemu() {
  local target=$1 work=$2 loadgen=$3 root_dir=$4
  local gnu binary qemu port pid
  gnu=$(gnu_triple "$target")
  binary="$target_dir/$target/release/sfubox"
  qemu=$(qemu_of "$target")
  mkdir -p "$work/groups" "$work/data"
  echo '{"public": true, "displayName": "ARM board",
         "wildcard-user": {"password": "pw", "permissions": "present"}}' > "$work/groups/arm.json"
  port=18443
  "$qemu" -L "/usr/$gnu" "$binary" -insecure -http "127.0.0.1:$port" -udp-range $((port + 1)) \
    -groups "$work/groups" -data "$work/data" > "$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "$target: the server exited" >&2; return 1; }
    sleep 0.1
  done
  if ! python3 "$root_dir/tests/arm/check_server.py" "$binary" "$port" arm "$(elf_machine "$target")"; then
    kill "$pid" 2>/dev/null || true
    cat "$work/server.log"
    return 1
  fi
  kill -TERM "$pid"
  local status=0
  wait "$pid" || status=$?
  [ "$status" = 0 ] || { cat "$work/server.log"; echo "$target: exit status $status after SIGTERM" >&2; return 1; }
  echo "   SIGTERM: clean exit"

  # The load generator starts the binary itself (through this wrapper) for every step.
  cat > "$work/sfubox-under-qemu" <<EOF
#!/bin/sh
exec $qemu -L /usr/$gnu $binary "\$@"
EOF
  chmod +x "$work/sfubox-under-qemu"
  "$loadgen" suite --quick --targets sfubox --scenarios fanout --fanout 2 \
    --sfubox "$work/sfubox-under-qemu" --out "$work/media" --target-cpu 1 --generator-cpu 0
  # The generator judges quality against a native build (latency, CPU) and marks most steps
  # invalid under emulation; what this test needs is that media went through: at every step
  # each subscriber received, and packets were forwarded.
  python3 - "$work/media/results.json" <<'PY'
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["scenario"] == "fanout"]
steps = sorted({r["n"] for r in rows})
if steps != [2]:
    sys.exit(f"media: fan-out steps measured {steps}, expected [2]")
for r in rows:
    if r["receiving"] != r["n"] or not r["forwarded_pps"] > 0:
        sys.exit(f"media: at n={r['n']} {r['receiving']} of {r['n']} subscribers received, "
                 f"{r['forwarded_pps']:.0f} packets/s forwarded")
    print(f"   media: n={r['n']}: {r['receiving']} subscribers receiving, "
          f"{r['forwarded_pps']:.0f} packets/s forwarded, loss {100 * r['loss']:.2f} %")
PY
}

for target in $targets; do
  phase "$target under $(qemu_of "$target"): .status, a join, media through the SFU"
  work="$scratch/$target"
  mkdir -p "$work"
  export -f run_under_qemu gnu_triple qemu_of elf_machine
  export target_dir
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    unshare -n bash -c 'set -euo pipefail; ip link set lo up; run_under_qemu "$@"' \
      arm "$target" "$work" "$loadgen" "$root_dir"
  else
    run_under_qemu "$target" "$work" "$loadgen" "$root_dir"
  fi
done

for target in $targets; do
  arch=$(deb_arch "$target")
  phase "cargo deb for $arch, unpacked and checked"
  rm -f "$target_dir/$target/debian/"sfubox_*.deb
  cargo deb --target "$target" --no-build --no-strip >/dev/null
  deb=$(ls "$target_dir/$target/debian/"sfubox_*_"$arch".deb)
  tests/arm/check_deb.sh "$deb" "$arch" "$(elf_machine "$target")" \
    "$target_dir/$target/release/sfubox" "$scratch/deb-$arch"
done

if [ "$unit_tests" = 1 ] && [[ " $targets " == *" aarch64-unknown-linux-gnu "* ]]; then
  phase "library unit tests for aarch64 under qemu-aarch64"
  cargo test --locked --lib --target aarch64-unknown-linux-gnu
fi
phase "done"
