#!/usr/bin/env bash
# Static/dynamic separation on loopback: 4 test origins, one node with two pools, health
# checks and cookie persistence. Shows routing, a dynamic server going DOWN and its sessions
# moving, then leaves everything running until Ctrl-C (DEMO_EXIT=1: stop after the walkthrough).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/strait
CONF=topology/examples/static-dynamic.toml
$BIN check "$CONF"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for port in 18080 18081 18082 18083; do
    $BIN sim origin --listen 127.0.0.1:$port >/dev/null & pids+=($!)
done
dyn2=${pids[3]}
$BIN node --config "$CONF" 2>node-a.log & pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:9090/stats.json && break; sleep 0.1; done
echo "== static (pool static, cached):"
curl -s -D - -o /dev/null http://127.0.0.1:8080/obj/logo.png | grep -iE '^cache-status'
curl -s -D - -o /dev/null http://127.0.0.1:8080/obj/logo.png | grep -iE '^cache-status'
echo "== dynamic (pool dynamic, leastconn, persistence cookie):"
cookie=$(curl -s -D - -o /dev/null http://127.0.0.1:8080/dyn/cart | awk -F': ' 'tolower($1)=="set-cookie" {print $2}' | cut -d';' -f1)
echo "session cookie: $cookie"
for i in 1 2 3; do curl -s -H "Cookie: $cookie" http://127.0.0.1:8080/dyn/cart; done
echo "== killing the dynamic origin on 127.0.0.1:18083"
kill "$dyn2"
sleep 3
$BIN ctl --admin 127.0.0.1:9090 stats | sed -n '/^pool/,$p'
echo "== the session keeps working (moved to the other server if it was on the dead one):"
curl -s -D - -H "Cookie: $cookie" http://127.0.0.1:8080/dyn/cart | grep -iE '^(HTTP|set-cookie)|^dyn'
if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo; echo "node a: http://127.0.0.1:8080/  stats page: http://127.0.0.1:9090/  Ctrl-C stops"
wait
