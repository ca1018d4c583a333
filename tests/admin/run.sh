#!/usr/bin/env bash
# Browser test of the administration page (/admin/), the change-password page and the
# invitation flow, in Debian's Chromium through playwright-core (the shared harness,
# tests/browser; no browser is downloaded). The QR code of an invitation is read back with
# zbarimg (Debian's zbar-tools, installed here if missing).
#
# Environment: SFUBOX_BIN (skip the build), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=admin
. tests/browser/lib.sh

browser_setup
browser_apt zbar-tools
browser_build_server "$@"

browser_log "QR encoder against zbarimg"
node --test tests/admin/qr.test.mjs

browser_log "browser tests"
node --test --test-concurrency=1 tests/admin/admin.test.mjs
