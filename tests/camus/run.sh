#!/usr/bin/env bash
# Browser test of the Camus endpoints with both published client bundles.
#
# Fetches camus-chat 0.2.3 and 0.3.1 from PyPI (wheels only, no dependencies, into a scratch
# directory: nothing of Camus is committed), unpacks each wheel's static/ directory, builds
# sfubox, and runs tests/camus/browser.mjs once per bundle with Debian's Chromium through
# playwright-core (the shared browser harness, tests/browser; no browser is downloaded).
#
# Environment: SFUBOX_BIN (skip the build), CHROMIUM (default /usr/bin/chromium),
# CAMUS_VERSIONS (default "0.2.3 0.3.1").
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=camus
. tests/browser/lib.sh

versions=${CAMUS_VERSIONS:-"0.2.3 0.3.1"}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sfubox-camus-bundles.XXXXXX")
browser_on_exit 'rm -rf "$scratch"'

browser_setup
browser_build_server "$@"

status=0
for version in $versions; do
  echo "== camus-chat $version"
  python3 -m pip download --quiet --no-deps --only-binary=:all: "camus-chat==$version" \
    -d "$scratch/$version"
  wheel=$(ls "$scratch/$version"/camus_chat-"$version"-*.whl)
  python3 -m zipfile -e "$wheel" "$scratch/$version/unpacked"
  static="$scratch/$version/unpacked/camus/static"
  echo "bundle: $(cd "$static" && ls dist/*.js)"
  if ! node tests/camus/browser.mjs "$SFUBOX_BIN" "$static" "$version"; then
    status=1
  fi
done
exit $status
