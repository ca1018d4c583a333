#!/usr/bin/env bash
# Checks one sfubox .deb made by `cargo deb` (tests/arm/run.sh calls it per architecture):
#
#   tests/arm/check_deb.sh PACKAGE.deb ARCH ELF_MACHINE BUILT_BINARY WORKDIR
#
# - control: package name, Architecture = ARCH, Depends on adduser and libc6, the conffile;
# - files: exactly the expected list (binary, unit, sysctl file, /etc/default, examples, docs),
#   each owned by root with the expected mode, the binary an ELF for ELF_MACHINE and identical
#   to the one built;
# - maintainer scripts: executable, valid sh, ours merged with cargo-deb's systemd snippets
#   (the user and state directories, enable and start, stop on removal, purge) and no
#   unexpanded #DEBHELPER# token;
# - the systemd unit passes `systemd-analyze verify` inside the unpacked tree without a
#   warning, and
#   `systemd-analyze security --offline` rates it OK.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$1 arch=$2 machine=$3 built=$4 work=$5
rm -rf "$work"
mkdir -p "$work"

fail() { echo "check_deb ($arch): $*" >&2; exit 1; }

# Control fields.
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = sfubox ] || fail "Package is $(field Package)"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture is $(field Architecture), expected $arch"
depends=$(field Depends)
grep -q 'adduser' <<<"$depends" || fail "Depends lacks adduser: $depends"
grep -q 'libc6' <<<"$depends" || fail "Depends lacks libc6: $depends"
echo "   control: $(field Package) $(field Version) $(field Architecture), Depends: $depends"

# The file list: "mode owner/group path" for every regular file, against the expected list.
# (cargo-deb writes numeric owners: 0/0 is root/root.)
dpkg-deb -c "$deb" \
  | awk '$1 ~ /^-/ { sub(/^\.\//, "/", $6); if ($2 == "0/0") $2 = "root/root"; print $1, $2, $6 }' \
  | sort > "$work/files"
{
  echo "-rwxr-xr-x root/root /usr/bin/sfubox"
  echo "-rw-r--r-- root/root /etc/default/sfubox"
  echo "-rw-r--r-- root/root /usr/lib/sysctl.d/90-sfubox.conf"
  echo "-rw-r--r-- root/root /usr/lib/systemd/system/sfubox.service"
  echo "-rw-r--r-- root/root /usr/share/doc/sfubox/README.md"
  echo "-rw-r--r-- root/root /usr/share/doc/sfubox/copyright"
  for f in configs/groups/*.json; do echo "-rw-r--r-- root/root /usr/share/doc/sfubox/examples/groups/${f##*/}"; done
  for f in configs/data/*.json; do echo "-rw-r--r-- root/root /usr/share/doc/sfubox/examples/data/${f##*/}"; done
  for f in docs/*.md; do echo "-rw-r--r-- root/root /usr/share/doc/sfubox/docs/${f##*/}"; done
} | sort > "$work/expected"
if ! diff -u "$work/expected" "$work/files"; then
  fail "the file list differs from the expected one (- expected, + in the package)"
fi
echo "   files: $(wc -l < "$work/files") files, modes and owners as expected"

# The unpacked tree: the binary is the one built, for the right machine.
dpkg-deb -x "$deb" "$work/root"
python3 - "$work/root/usr/bin/sfubox" "$machine" <<'EOF'
import struct, sys
path, machine = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    header = f.read(20)
wanted = {"aarch64": 183, "arm": 40}[machine]
if header[:4] != b"\x7fELF" or struct.unpack("<H", header[18:20])[0] != wanted:
    sys.exit(f"{path} is not an {machine} ELF executable")
EOF
cmp -s "$built" "$work/root/usr/bin/sfubox" || fail "the packaged binary differs from $built"

# Maintainer scripts.
dpkg-deb -e "$deb" "$work/control"
for script in postinst prerm postrm; do
  path="$work/control/$script"
  [ -f "$path" ] || fail "no $script"
  [ "$(stat -c %a "$path")" = 755 ] || fail "$script has mode $(stat -c %a "$path")"
  head -n 1 "$path" | grep -q '^#!/bin/sh' || fail "$script does not start with #!/bin/sh"
  sh -n "$path" || fail "$script is not valid sh"
  if grep -q '#DEBHELPER#' "$path"; then fail "$script still holds #DEBHELPER#"; fi
done
expect_in() {
  grep -q -- "$2" "$work/control/$1" || fail "$1 lacks: $2"
}
expect_in postinst 'adduser --system'
expect_in postinst 'install -d -o sfubox -g sfubox -m 0750 "$STATE/data"'
expect_in postinst 'deb-systemd-helper.* enable .*sfubox.service'
expect_in postinst 'deb-systemd-invoke .*sfubox.service'
expect_in prerm 'deb-systemd-invoke stop .*sfubox.service'
expect_in postrm 'rm -rf /var/lib/sfubox'
expect_in postrm 'deb-systemd-helper purge .*sfubox.service'
grep -qx '/etc/default/sfubox' "$work/control/conffiles" || fail "/etc/default/sfubox is not a conffile"
echo "   maintainer scripts: postinst, prerm, postrm valid; /etc/default/sfubox is a conffile"

# The unit, in the unpacked tree (the ARM binary is never run: verify parses every directive,
# warning about any it cannot, and checks that ExecStart's binary is there and executable).
# The host's own units go beside ours (without replacing it) so that the targets it is
# ordered against resolve as they would on a Debian system.
unit="$work/root/usr/lib/systemd/system/sfubox.service"
cp -an /usr/lib/systemd/system/. "$work/root/usr/lib/systemd/system/"
if ! systemd-analyze verify --root="$work/root" "$unit" > "$work/verify.log" 2>&1; then
  cat "$work/verify.log"
  fail "systemd-analyze verify rejected the unit"
fi
if [ -s "$work/verify.log" ]; then
  cat "$work/verify.log"
  fail "systemd-analyze verify warned about the unit"
fi
security=$(systemd-analyze security --offline=true --root="$work/root" "$unit" 2>&1 | tail -n 1)
grep -q 'exposure level.*OK' <<<"$security" || fail "systemd-analyze security: $security"
echo "   unit: systemd-analyze verify clean; security: ${security#*→ }"
