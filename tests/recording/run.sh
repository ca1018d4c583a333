#!/usr/bin/env bash
# Recording with real browsers and real decoders: headless Chromium pages publish (fake
# camera and microphone) in a group that allows recording, an operator records with the
# meeting page's button, and Debian's ffprobe/ffmpeg check every file (names, modes, codecs,
# duration, every frame decoded, audio and video starting together). Then the recordings
# browser over HTTP (auth, listing, download, ranges, deletion, traversal refused), SIGTERM
# during a recording, and a full disk (a small tmpfs): the meeting goes on, operators are
# warned, the partial files decode. Details in browser.mjs.
#
# Installs chromium and ffmpeg (apt) and playwright-core (npm, no browser download) when
# missing (tests/browser/lib.sh). Needs root (tmpfs mounts).
# Usage: tests/recording/run.sh [--no-build]   (uses $SFUBOX_BIN or $CARGO_TARGET_DIR, default target/)
set -euo pipefail
cd "$(dirname "$0")/../.."
BROWSER_SUITE=recording
. tests/browser/lib.sh

browser_setup
browser_apt ffmpeg
browser_build_server "$@"
node tests/recording/browser.mjs
