#!/usr/bin/env bash
# The cache cluster behind the XDP director, in network namespaces (topologies/cluster.toml):
# a client sends requests for 20 keys through the VIP, the director spreads the connections over
# three nodes, and the nodes answer as one cache: each key has one owner, so the three origins
# together see each key once. Then b3's node is killed: its keys move to b1/b2 (fetched once
# more), everything is still answered. Prints the paths the requests took (Cache-Status) and
# which node answered (Via); exits 1 if a request failed or an origin saw a key too often.
# Needs root (namespaces, XDP). STRAIT_BIN picks the binary (default: build the release one).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "the cluster demo needs root (network namespaces, XDP): run it as root (or with sudo)" >&2
    exit 1
fi
if [ -z "${STRAIT_BIN:-}" ]; then
    cargo build --release --quiet
    STRAIT_BIN=${CARGO_TARGET_DIR:-target}/release/strait
fi
BIN=$STRAIT_BIN
TOPO=topology/examples/topologies/cluster.toml
KEYS=${KEYS:-20}
RUN=$(mktemp -d /tmp/strait-cluster-demo.XXXXXX)
down() { "$BIN" sim down --topology "$TOPO" >/dev/null 2>&1 || true; rm -rf "$RUN"; }
trap down EXIT
ns() { local h=$1; shift; ip netns exec "st-cl-$h" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" check topology/examples/director/cluster/*.toml >/dev/null
"$BIN" sim up --topology "$TOPO" >"$RUN/up.txt" 2>"$RUN/up.log"
echo "topology cl up: client, director (XDP, DR, VIP 10.73.0.100), cache nodes b1 b2 b3"

# Wait (bounded) for the director to see three healthy backends and every node three members.
ready=0
for _ in $(seq 1 150); do
    up=$(ns director "$BIN" ctl --admin 127.0.0.1:9190 --json stats 2>/dev/null | grep -o '"up": *true' | wc -l || true)
    alive=0
    for b in b1 b2 b3; do
        n=$(ns "$b" curl -s -m 1 http://127.0.0.1:9090/cluster.json | grep -o '"alive"' | wc -l || true)
        alive=$((alive + n))
    done
    if [ "$up" = 3 ] && [ "$alive" = 9 ]; then ready=1; break; fi
    sleep 0.2
done
[ "$ready" = 1 ] || fail "not ready after 30 s: director sees $up backends up, nodes see $alive of 9 alive"
echo "ready: the director has 3 backends up; each node sees 3 alive members"

# path of one answer, from its Cache-Status: local hit, local miss, remote hit, remote miss.
classify() {
    awk -F', ' '
        NF == 1 && $1 ~ /; hit/ { print "local-hit"; next }
        NF == 1 { print "local-miss"; next }
        $1 ~ /; hit/ { print "remote-hit"; next }
        { print "remote-miss" }'
}
traffic() {  # traffic ROUNDS LABEL: every key ROUNDS times through the VIP, new connection each
    local rounds=$1 label=$2 k r out status cs via
    : >"$RUN/$label"
    for r in $(seq 1 "$rounds"); do
        for k in $(seq 1 "$KEYS"); do
            out=$(ns client curl -s -m 5 -D - -o /dev/null "http://10.73.0.100/obj/k$k?size=4000&ttl=600" | tr -d '\r') || true
            status=$(awk 'NR == 1 {print $2}' <<<"$out")
            [ "$status" = 200 ] || fail "$label: k$k got '${status:-no answer}'"
            cs=$(awk -F': ' 'tolower($1) == "cache-status" {print $2}' <<<"$out")
            via=$(awk -F': ' 'tolower($1) == "via" {print $2}' <<<"$out" | awk -F', ' '{print $NF}' | awk '{print $2}')
            echo "k$k $(classify <<<"$cs") $via $cs" >>"$RUN/$label"
        done
    done
    echo "$label: $((rounds * KEYS)) requests, all 200"
    printf '  paths:    '; awk '{print $2}' "$RUN/$label" | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}'; echo
    printf '  answered: '; awk '{print $3}' "$RUN/$label" | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}'; echo
}
origin_fetches() {  # total requests for /obj/k* over the live origins
    local total=0 n b
    for b in "$@"; do
        n=$(ns "$b" curl -s -m 2 http://127.0.0.1:8080/_origin/stats | grep -o '"/obj/k[0-9]*": *[0-9]*' | awk -F': *' '{s += $2} END {print s + 0}')
        total=$((total + n))
    done
    echo "$total"
}

traffic 3 "phase 1"
echo "  e.g.: $(grep remote-hit "$RUN/phase 1" | head -1 | cut -d' ' -f4-)"
fetched=$(origin_fetches b1 b2 b3)
echo "  origin fetches over the three nodes: $fetched for $KEYS keys"
[ "$fetched" = "$KEYS" ] || fail "the cluster fetched $fetched times for $KEYS keys"
stored=0
for b in b1 b2 b3; do
    n=$(ns "$b" curl -s -m 2 http://127.0.0.1:9090/stats.json | grep -o '"stored_objects": *[0-9]*' | awk -F': *' '{print $2}')
    echo "  $b stores $n objects"
    stored=$((stored + n))
    [ "$b" = b3 ] && owned_by_b3=$n
done
[ "$stored" = "$KEYS" ] || fail "the cluster stores $stored objects for $KEYS keys"
before=$(origin_fetches b1 b2)

pid=$(awk '/started \[b3\] .*strait node/ {for (i = 1; i <= NF; i++) if ($i == "(pid") {sub(",", "", $(i + 1)); print $(i + 1)}}' "$RUN/up.txt")
[ -n "$pid" ] || fail "no pid for b3's node in the sim up output"
kill -9 "$pid"
t0=$(date +%s.%N)
gone=0
for _ in $(seq 1 100); do
    dead=$(ns b1 curl -s -m 1 http://127.0.0.1:9090/cluster.json | grep -o '"id":"b3"[^}]*"state":"dead"\|"state":"dead"[^}]*"id":"b3"' | wc -l || true)
    down=$(ns director "$BIN" ctl --admin 127.0.0.1:9190 --json stats 2>/dev/null | grep -o '"up": *true' | wc -l || true)
    if [ "$dead" -ge 1 ] && [ "$down" = 2 ]; then gone=1; break; fi
    sleep 0.1
done
[ "$gone" = 1 ] || fail "b3 not declared dead by the cluster and down by the director within 10 s"
echo "b3's node killed (SIGKILL): dead in the cluster and down at the director after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"

traffic 2 "phase 2"
again=$(( $(origin_fetches b1 b2) - before ))
echo "  origin fetches in phase 2: $again (b3 held $owned_by_b3 keys: each fetched once more, stored at its new owner)"
[ "$again" = "$owned_by_b3" ] || fail "phase 2 fetched $again times for the $owned_by_b3 keys b3 held"
[ "$(awk '{print $3}' "$RUN/phase 2" | grep -c b3 || true)" = 0 ] || fail "b3 answered after it died"
"$BIN" sim down --topology "$TOPO" >/dev/null
[ -z "$(ip netns list | grep '^st-cl-' || true)" ] || fail "namespaces left after sim down"
echo "torn down: no st-cl- namespace left"
