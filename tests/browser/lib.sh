# The browser suites' shared shell helpers (tests/web, tests/admin, tests/camus, tests/gst,
# tests/whip, tests/recording, tests/media-browser, tests/network). Source it from the
# repository's root:
#
#   cd "$(dirname "$0")/../.."
#   . tests/browser/lib.sh
#   browser_setup                 # chromium (apt), node and npm, tests/browser's node modules
#   browser_build_server "$@"     # sets SFUBOX_BIN (cargo build unless --no-build or SFUBOX_BIN)
#   browser_on_exit 'rm -rf "$WORK"'
#   browser_start_server "$WORK/server.log" "$SFUBOX_BIN" -insecure -http 127.0.0.1:$PORT ...
#   browser_wait_http "http://127.0.0.1:$PORT/"
#
# One EXIT trap runs the cleanup: the commands given to browser_on_exit, last registered
# first; browser_start_server registers the server's stop, so the server stops before whatever
# was registered before it started (its work directory, its network namespace). Installs never download a browser: Chromium is
# Debian's, playwright-core only drives it.

BROWSER_DIR=tests/browser
SERVER_PID=
BROWSER_CLEANUP=()

browser_log() { echo "== ${BROWSER_SUITE:-browser}: $*"; }

# Runs as root, or through sudo.
browser_sudo() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages given that are not installed yet.
browser_apt() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    browser_log "installing ${missing[*]}"
    browser_sudo apt-get update -qq
    browser_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# Chromium (unless $CHROMIUM names one), node and npm, and tests/browser's node modules.
browser_setup() {
  local packages=()
  if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then packages+=(chromium); fi
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  command -v curl >/dev/null || packages+=(curl)
  if [ ${#packages[@]} -gt 0 ]; then browser_apt "${packages[@]}"; fi
  if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    browser_log "installing playwright-core in $BROWSER_DIR"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$BROWSER_DIR" --no-audit --no-fund \
      --loglevel=error
  fi
}

# Sets SFUBOX_BIN: kept if set, else the debug build (built unless the first argument is
# --no-build), as an absolute path.
browser_build_server() {
  if [ -z "${SFUBOX_BIN:-}" ]; then
    if [ "${1:-}" != "--no-build" ]; then
      browser_log "building sfubox"
      cargo build --quiet --bin sfubox
    fi
    SFUBOX_BIN=${CARGO_TARGET_DIR:-target}/debug/sfubox
  fi
  SFUBOX_BIN=$(realpath "$SFUBOX_BIN")
  export SFUBOX_BIN
}

# Prints a TCP port free on 127.0.0.1 right now.
browser_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts a command (the server, possibly under `ip netns exec`) in the background with its
# output in LOG; sets SERVER_PID. The cleanup stops it.
browser_start_server() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  browser_on_exit browser_stop_server
}

# Stops the server started by browser_start_server, if it runs.
browser_stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# Waits until URL answers (curl; extra arguments go to curl, e.g. -k), at most 10 s, or
# until the server exited. Runs the check under PREFIX (e.g. "ip netns exec NS") if
# BROWSER_CURL_PREFIX is set. Fails if it never answered.
browser_wait_http() {
  local url=$1
  shift
  for _ in $(seq 100); do
    # shellcheck disable=SC2086 # the prefix is words
    if ${BROWSER_CURL_PREFIX:-} curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then
      return 0
    fi
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  browser_log "$url did not answer"
  return 1
}

# Adds a command to the cleanup (run on exit, last added first).
browser_on_exit() {
  BROWSER_CLEANUP+=("$1")
}

browser_cleanup() {
  set +e
  local i
  for ((i = ${#BROWSER_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${BROWSER_CLEANUP[$i]}"
  done
  browser_stop_server
}
trap browser_cleanup EXIT

# Prints the last lines of a log under a heading (for failures).
browser_tail() {
  local what=$1 file=$2 lines=${3:-50}
  echo "== ${BROWSER_SUITE:-browser}: $what (last $lines lines):"
  tail -n "$lines" "$file" 2>/dev/null
}
