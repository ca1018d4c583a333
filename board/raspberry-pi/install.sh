#!/bin/sh
# Installs sfubox on a Raspberry Pi (or any systemd machine) without the .deb: the binary,
# the systemd unit, the sysctl settings, /etc/default/sfubox and the example configuration,
# then creates the user and directories and starts the service.
#
#   sudo board/raspberry-pi/install.sh [path/to/sfubox]
#
# The binary defaults to the first of target/{aarch64-unknown-linux-gnu,
# armv7-unknown-linux-gnueabihf,}/release/sfubox that exists. With DESTDIR set, files are
# only copied under DESTDIR (no user, no chown, no systemctl): for packaging and for tests.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
destdir=${DESTDIR:-}

binary=${1:-}
if [ -z "$binary" ]; then
    for candidate in \
        "$root/target/aarch64-unknown-linux-gnu/release/sfubox" \
        "$root/target/armv7-unknown-linux-gnueabihf/release/sfubox" \
        "$root/target/release/sfubox"; do
        if [ -x "$candidate" ]; then
            binary=$candidate
            break
        fi
    done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "install.sh: no sfubox binary found; build one or give its path" >&2
    exit 1
fi
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or set DESTDIR)" >&2
    exit 1
fi

echo "Installing $binary"
install -D -m 0755 "$binary" "$destdir/usr/local/bin/sfubox"
# The unit names /usr/bin/sfubox (the .deb's path); this install lives in /usr/local/bin.
install -d "$destdir/etc/systemd/system"
sed 's|/usr/bin/sfubox|/usr/local/bin/sfubox|g' "$here/sfubox.service" \
    >"$destdir/etc/systemd/system/sfubox.service"
chmod 0644 "$destdir/etc/systemd/system/sfubox.service"
install -D -m 0644 "$here/90-sfubox.conf" "$destdir/usr/lib/sysctl.d/90-sfubox.conf"
if [ ! -e "$destdir/etc/default/sfubox" ]; then
    install -D -m 0644 "$here/sfubox.default" "$destdir/etc/default/sfubox"
fi
examples="$destdir/usr/local/share/doc/sfubox/examples"
install -d "$examples"
cp -R "$root/configs/." "$examples/"

if [ -n "$destdir" ]; then
    echo "Copied into $destdir; skipping the user, directories and service."
    exit 0
fi

sh "$here/debian/postinst" configure
systemctl daemon-reload
systemctl enable --now sfubox.service
echo "sfubox is running: https://$(hostname):8443/ (see journalctl -u sfubox)."
echo "Define groups: mkdir /var/lib/sfubox/groups, copy files from $examples/groups,"
echo "change the passwords, then: sfubox -check-config -groups /var/lib/sfubox/groups -data /var/lib/sfubox/data"
