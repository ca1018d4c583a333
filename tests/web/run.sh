#!/usr/bin/env bash
# Tests of sfubox's web client: unit tests of static/protocol.js (node's test
# runner, no browser), then browser tests of the pages against the real
# server in Debian's Chromium.  Installs what it needs: the chromium package
# if it is missing, and playwright-core from npm (never a browser download).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null; then
    echo "node (>= 20) is required" >&2
    exit 1
fi

echo "== web client: unit tests"
node --test unit/*.test.mjs

if [ "${SFUBOX_SKIP_BROWSER:-}" = 1 ]; then
    echo "== web client: browser tests skipped (SFUBOX_SKIP_BROWSER=1)"
    exit 0
fi

if [ ! -x /usr/bin/chromium ]; then
    echo "== installing Debian's chromium"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d node_modules/playwright-core ]; then
    echo "== installing playwright-core"
    npm ci --no-audit --no-fund --loglevel=error
fi

echo "== web client: browser tests"
node --test --test-concurrency=1 browser/*.test.mjs
