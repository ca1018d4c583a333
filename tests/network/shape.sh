#!/usr/bin/env bash
# Link shaping for the network test's namespaces (see run.sh for the topology).
#
#   shape.sh cap-down PEER RATE [BURST LATENCY]  tbf on the server-side veth toward PEER (PEER's downlink)
#   shape.sh uncap-down PEER                     remove it
#   shape.sh cap-up PEER RATE [BURST LATENCY]    tbf on PEER's own veth toward the server (PEER's uplink)
#   shape.sh uncap-up PEER                       remove it
#   shape.sh loss PEER PCT [down|both]           nftables: drop PCT % of UDP datagrams at random on
#                                                PEER's link, entering PEER (down) or both directions
#   shape.sh unloss PEER                         remove it
#   shape.sh stats PEER                          one line: tbf drops both ways and nft drops
#   shape.sh clear                               remove all shaping from pub, sub1 and sub2
#
# Defaults: BURST 16kb, LATENCY 300ms (run.sh explains why). Namespaces are named
# ${NETTEST_NS_PREFIX:-sfubox-nt-}{srv,pub,sub1,sub2}; the server side of PEER's veth is
# "to-PEER" in the srv namespace, PEER's side is "to-srv". Needs root, tc and nft.
set -euo pipefail
P=${NETTEST_NS_PREFIX:-sfubox-nt-}
SRV=${P}srv
cmd=${1:?usage: shape.sh COMMAND PEER ...}
peer=${2:-}

in_ns() { ip netns exec "$1" "${@:2}"; }

case "$cmd" in
cap-down)
  in_ns "$SRV" tc qdisc replace dev "to-$peer" root tbf rate "${3:?rate}" burst "${4:-16kb}" latency "${5:-300ms}"
  ;;
uncap-down)
  in_ns "$SRV" tc qdisc del dev "to-$peer" root 2>/dev/null || true
  ;;
cap-up)
  in_ns "$P$peer" tc qdisc replace dev to-srv root tbf rate "${3:?rate}" burst "${4:-16kb}" latency "${5:-300ms}"
  ;;
uncap-up)
  in_ns "$P$peer" tc qdisc del dev to-srv root 2>/dev/null || true
  ;;
loss)
  pct=${3:?percent}
  dir=${4:-both}
  in_ns "$P$peer" nft delete table inet nettest 2>/dev/null || true
  rules="table inet nettest {
    chain in { type filter hook input priority 0; policy accept;
      meta l4proto udp numgen random mod 100 < $pct counter drop; }"
  if [ "$dir" = both ]; then
    rules="$rules
    chain out { type filter hook output priority 0; policy accept;
      meta l4proto udp numgen random mod 100 < $pct counter drop; }"
  fi
  in_ns "$P$peer" nft -f - <<<"$rules
}"
  ;;
unloss)
  in_ns "$P$peer" nft delete table inet nettest 2>/dev/null || true
  ;;
stats)
  tbf() { # ns dev -> "sent N pkt, dropped N, overlimits N" or "none"
    local s
    s=$(in_ns "$1" tc -s qdisc show dev "$2" 2>/dev/null | grep -A1 '^qdisc tbf' | tail -1 || true)
    if [ -n "$s" ]; then
      sed -E 's/^ *Sent ([0-9]+) bytes ([0-9]+) pkt \(dropped ([0-9]+), overlimits ([0-9]+).*/\2 pkts, \3 dropped, \4 overlimits/' <<<"$s"
    else
      echo none
    fi
  }
  nftdrops=$(in_ns "$P$peer" nft list table inet nettest 2>/dev/null \
    | sed -nE 's/.*counter packets ([0-9]+).*/\1/p' | paste -sd/ || true)
  echo "down tbf: $(tbf "$SRV" "to-$peer"); up tbf: $(tbf "$P$peer" to-srv); nft drops in/out: ${nftdrops:-none}"
  ;;
clear)
  for p in pub sub1 sub2; do
    "$0" uncap-down "$p"
    "$0" uncap-up "$p"
    "$0" unloss "$p"
  done
  ;;
*)
  echo "shape.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
