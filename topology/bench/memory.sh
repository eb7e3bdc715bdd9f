#!/usr/bin/env bash
# Resident memory per cached object: start a node (ram = 1GiB so nothing is evicted), note its
# RSS, load N distinct 1 KiB objects through it with wrk (a Lua counter makes the URLs), check
# stored_objects == N, and print (RSS after - RSS before) / N.
#   N=100000 SIZE=1024 ./topology/bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STRAIT_BIN:-$PWD/target/release/strait}
N=${N:-100000}
SIZE=${SIZE:-1024}
RUN=$(mktemp -d /tmp/strait-mem.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT
cat >"$RUN/node.toml" <<TOML
[node]
id = "mem"
listen = ["127.0.0.1:28207"]
admin = "127.0.0.1:28297"
workers = 1
[storage]
ram = "1GiB"
[[pool]]
name = "origin"
servers = [{ addr = "127.0.0.1:28280" }]
[[route]]
pool = "origin"
TOML
cat >"$RUN/load.lua" <<LUA
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/obj/m" .. (i % $N) .. "?size=$SIZE&ttl=3600")
end
LUA
"$BIN" sim origin --listen 127.0.0.1:28280 >/dev/null & pids+=($!)
"$BIN" node --config "$RUN/node.toml" 2>"$RUN/node.log" & node=$!; pids+=($node)
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:28297/stats.json && break; sleep 0.05; done
curl -s -o /dev/null "http://127.0.0.1:28207/obj/warm?size=$SIZE"
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$node/status"; }
stored() { curl -s http://127.0.0.1:28297/stats.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_objects"])'; }
before=$(rss)
# one wrk thread (the Lua counter is per thread) on 8 connections: URLs 0..N-1 in order, then
# again (hits) until the run ends
wrk -t1 -c8 -d"${LOAD_SECS:-40}s" -s "$RUN/load.lua" http://127.0.0.1:28207/ >/dev/null
[ "$(stored)" -ge $((N + 1)) ] || { echo "only $(stored) objects stored; raise LOAD_SECS" >&2; exit 1; }
after=$(rss)
objs=$(stored)
python3 - "$before" "$after" "$objs" "$SIZE" <<'PY'
import sys
b, a, n, size = map(int, sys.argv[1:])
print(f"objects stored: {n}, object body: {size} B")
print(f"RSS before: {b/2**20:.1f} MiB, after: {a/2**20:.1f} MiB")
print(f"resident memory per cached object: {(a-b)/(n-1):.0f} B ({(a-b)/(n-1)/size:.2f}x the body)")
PY
