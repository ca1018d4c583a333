#!/usr/bin/env bash
# Checks that every local link in README.md and docs/*.md ([text](path), ![alt](path)) names a
# file or directory in the tree. Web links and in-page anchors are skipped; nothing goes to the
# network. Prints each broken link as file:line: target and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for file in README.md docs/*.md; do
  dir=$(dirname "$file")
  while IFS=: read -r line target; do
    path=${target%%#*}
    [ -z "$path" ] && continue
    case "$path" in http://*|https://*|mailto:*) continue ;; esac
    if [ ! -e "$dir/$path" ]; then
      echo "$file:$line: $target"
      status=1
    fi
  done < <(awk '/^```/ { code = !code; next }
                !code { s = $0
                        while (match(s, /\]\([^) ]+\)/)) {
                          print FNR ":" substr(s, RSTART + 2, RLENGTH - 3)
                          s = substr(s, RSTART + RLENGTH)
                        } }' "$file")
done
[ "$status" = 0 ] || echo "broken local links in the Markdown files above" >&2
exit "$status"
