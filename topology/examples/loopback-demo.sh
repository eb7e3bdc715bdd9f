#!/usr/bin/env bash
# Quick start: build strait, start two test origins and one cache node on loopback, show a miss
# turning into a hit, print the node's counters, then keep running until Ctrl-C.
#   DEMO_EXIT=1 ./topology/examples/loopback-demo.sh    # run the walkthrough and stop
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/strait
CONF=topology/examples/loopback-node.toml
$BIN check "$CONF"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
$BIN sim origin --listen 127.0.0.1:18080 >/dev/null & pids+=($!)
$BIN sim origin --listen 127.0.0.1:18081 >/dev/null & pids+=($!)
$BIN node --config "$CONF" 2>node-a.log & pids+=($!)
for _ in $(seq 1 100); do
    curl -s -o /dev/null http://127.0.0.1:9090/stats.json && break
    sleep 0.1
done
show() { echo "\$ curl -s -D - -o /dev/null $1"; curl -s -D - -o /dev/null "$1" | grep -iE '^(HTTP|cache-status|age|via)'; echo; }
show "http://127.0.0.1:8080/obj/hello?size=4096&ttl=60"
show "http://127.0.0.1:8080/obj/hello?size=4096&ttl=60"
show "http://127.0.0.1:8080/dyn/counter"
echo "\$ strait ctl stats"
$BIN ctl --admin 127.0.0.1:9090 stats
if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo
echo "node a: http://127.0.0.1:8080/  stats page: http://127.0.0.1:9090/  (log: node-a.log); Ctrl-C stops"
wait
