#!/usr/bin/env bash
# Tests of sfubox's web client: unit tests of static/protocol.js (node's test runner, no
# browser), then browser tests of the pages against the real server in Debian's Chromium
# (tests/browser's harness; screenshots go to tests/web/artifacts/). Installs what it needs
# (tests/browser/lib.sh): the chromium package if it is missing, and playwright-core from npm
# (never a browser download).
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=web
. tests/browser/lib.sh

if ! command -v node >/dev/null; then
  echo "node (>= 20) is required" >&2
  exit 1
fi

browser_log "unit tests"
node --test tests/web/unit/*.test.mjs

if [ "${SFUBOX_SKIP_BROWSER:-}" = 1 ]; then
  browser_log "browser tests skipped (SFUBOX_SKIP_BROWSER=1)"
  exit 0
fi

browser_setup
browser_build_server "$@"

browser_log "browser tests"
node --test --test-concurrency=1 tests/web/browser/*.test.mjs
