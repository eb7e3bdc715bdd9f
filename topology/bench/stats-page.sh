#!/usr/bin/env bash
# A node with two pools, some hits, misses and a 404, one server drained; screenshot of its stats page.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STRAIT_BIN:-$PWD/target/release/strait}
RUN=$(mktemp -d)
$BIN sim origin --listen 127.0.0.1:28580 >/dev/null 2>&1 & O1=$!
$BIN sim origin --listen 127.0.0.1:28581 >/dev/null 2>&1 & O2=$!
cat >"$RUN/node.toml" <<TOML
[node]
id = "edge-1"
listen = ["127.0.0.1:28507"]
admin = "127.0.0.1:28597"
[storage]
ram = "256m"
[[pool]]
name = "static"
servers = [{ addr = "127.0.0.1:28580" }, { addr = "127.0.0.1:28581" }]
[[pool]]
name = "dynamic"
algorithm = "leastconn"
servers = [{ addr = "127.0.0.1:28581" }]
[[route]]
match = { path_prefix = "/dyn/" }
pool = "dynamic"
cache = false
[[route]]
pool = "static"
TOML
sleep 0.3
$BIN node --config $RUN/node.toml 2>$RUN/log & N=$!
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:28507/ && break; sleep 0.05; done
$BIN ctl --admin 127.0.0.1:28597 server static 127.0.0.1:28581 drain >/dev/null
for i in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:28507/obj/$((i % 40))?size=4096&ttl=600"; done
for i in $(seq 1 60); do curl -s -o /dev/null "http://127.0.0.1:28507/dyn/$i"; done
for i in $(seq 1 5); do curl -s -o /dev/null "http://127.0.0.1:28507/nothing-$i"; done
curl -s -o /dev/null http://127.0.0.1:28597/
sleep 1.2
for i in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:28507/obj/$((i % 40))?size=4096&ttl=600"; done
D=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$D" --hide-scrollbars \
  --window-size=1280,1500 --screenshot="${OUT:-docs/stats-page.png}" http://127.0.0.1:28597/ 2>/dev/null || true
kill $N $O1 $O2; wait 2>/dev/null || true
rm -rf "$RUN" "$D"
ls -la "${OUT:-docs/stats-page.png}"
