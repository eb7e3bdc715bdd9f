#!/usr/bin/env bash
# Instructions per no-store miss (callgrind, user space): strait or HAProxy 2.6 in front of
# `strait sim origin`, `wrk -t1 -c$C` on one `Cache-Control: no-store` URL, instrumentation on for
# $DUR after a 2 s warm-up. Counts repeat to a few per cent on a busy machine (wall clock does not).
# METHOD=POST: every request a POST with a body of SIZE bytes instead (a pass with bodies both ways).
# Needs: valgrind, wrk, curl, haproxy (for TARGET=haproxy).
#   TARGET=strait|haproxy BIN=target/release/strait SIZE=1024 DUR=10s C=20 \
#     ./topology/bench/miss-callgrind.sh OUTDIR      # then callgrind_annotate OUTDIR/callgrind.*.1
#   METHOD=POST TARGET=strait SIZE=1024 ./topology/bench/miss-callgrind.sh OUTDIR
set -euo pipefail
# glibc's vector memcpy at every size: callgrind counts a `rep movsb` copy once per byte, which
# would make a large copy look many times dearer than it is (see cluster-callgrind.sh).
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.cpu.x86_rep_movsb_threshold=1073741824}
BIN=${BIN:-$PWD/target/release/strait}; SIZE=${SIZE:-1024}; DUR=${DUR:-10s}; C=${C:-20}; TARGET=${TARGET:-strait}; METHOD=${METHOD:-GET}
OUT=${1:?outdir}; mkdir -p "$OUT"; rm -f "$OUT"/callgrind.*
RUN=$(mktemp -d /tmp/cgrun.XXXX)
ORIGIN=127.0.0.1:28480; PORT=28481
pids=(); cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT
cat >"$RUN/n.toml" <<TOML
[node]
id = "n"
listen = ["127.0.0.1:$PORT"]
admin = "127.0.0.1:28491"
workers = 1
[storage]
ram = "256MiB"
[[pool]]
name = "origin"
servers = [{ addr = "$ORIGIN" }]
[[route]]
pool = "origin"
TOML
cat >"$RUN/h.cfg" <<CFG
global
    nbthread 1
    maxconn 8000
    tune.bufsize 16384
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
cache hits
    total-max-size 256
    max-object-size 1048576
    max-age 3600
frontend fe
    bind 127.0.0.1:$PORT
    http-request cache-use hits
    http-response cache-store hits
    default_backend origin
backend origin
    http-reuse always
    server origin $ORIGIN
CFG
"$BIN" sim origin --listen $ORIGIN >/dev/null 2>&1 & pids+=($!)
if [ "$TARGET" = strait ]; then
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.%p" "$BIN" node --config "$RUN/n.toml" 2>"$RUN/log" & PID=$!
else
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.%p" haproxy -db -f "$RUN/h.cfg" >"$RUN/log" 2>&1 & PID=$!
fi
pids+=($PID)
URL="http://127.0.0.1:$PORT/obj/m?size=$SIZE&cc=no-store"
for _ in $(seq 1 300); do curl -s -o /dev/null "$URL" && break; sleep 0.1; done
script=()
if [ "$METHOD" != GET ]; then
  printf 'wrk.method = "%s"\nwrk.body = string.rep("x", %d)\n' "$METHOD" "$SIZE" >"$RUN/m.lua"
  script=(-s "$RUN/m.lua")
fi
wrk -t1 -c$C -d2s "${script[@]}" "$URL" >/dev/null
callgrind_control -z $PID >/dev/null; callgrind_control -i on $PID >/dev/null
out=$(wrk -t1 -c$C -d$DUR "${script[@]}" "$URL")
callgrind_control -i off $PID >/dev/null; callgrind_control -d miss $PID >/dev/null
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
echo "reqs=$reqs $(grep -E 'Non-2xx|Socket' <<<"$out" | tr '\n' ' ')"
sleep 1
f=$(ls "$OUT"/callgrind.*.1 | head -1)
tot=$(grep -h "^totals" "$f" | head -1 | awk "{print \$2}")
echo "$TARGET total=$tot per_req=$((tot / reqs))"
