#!/usr/bin/env bash
# Instructions per remote hit (callgrind, user space) at the asking node `a` or the owner `b`:
# the two-node cluster of cluster.sh, one of them under callgrind, `wrk -t1 -c$C` cycling over
# $KEYS keys of $SIZE bytes that b owns, every request sent to a; instrumentation on for $DUR
# after a warm-up. Counts repeat to a few per cent on a busy machine (wall clock does not).
# Needs: valgrind, wrk, curl.
#   NODE=a|b BIN=target/release/strait SIZE=1024 KEYS=200 DUR=10s C=20 HOT_TTL=0s \
#     ./topology/bench/cluster-callgrind.sh OUTDIR    # then callgrind_annotate OUTDIR/callgrind.*.1
#   NODE=b TO=b …: the same keys asked from b itself (local hits at the owner), the baseline
set -euo pipefail
# glibc copies more than 4 KiB with `rep movsb`, which callgrind counts once per byte moved (the
# vector loop below that moves 32 bytes an instruction): a change that merely joined small
# copies into one large one would count as more work. The loop for every size keeps counts
# comparable; set GLIBC_TUNABLES= (empty) for glibc's own choice.
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.cpu.x86_rep_movsb_threshold=1073741824}
BIN=${BIN:-$PWD/target/release/strait}; SIZE=${SIZE:-1024}; KEYS=${KEYS:-200}; DUR=${DUR:-10s}
C=${C:-20}; NODE=${NODE:-a}; HOT_TTL=${HOT_TTL:-0s}
OUT=${1:?outdir}; mkdir -p "$OUT"; rm -f "$OUT"/callgrind.*
RUN=$(mktemp -d /tmp/cgcluster.XXXX)
ORIGIN=127.0.0.1:28580
declare -A IP=([a]=127.0.0.71 [b]=127.0.0.72) ADMIN=([a]=28591 [b]=28592)
pids=(); cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT
for n in a b; do
    other=$([ $n = a ] && echo b || echo a)
    cat >"$RUN/$n.toml" <<TOML
[node]
id = "$n"
listen = ["${IP[$n]}:28581"]
admin = "127.0.0.1:${ADMIN[$n]}"
workers = 1
[storage]
ram = "256MiB"
[cache]
hot_ttl = "$HOT_TTL"
[cluster]
peer_listen = "${IP[$n]}:28570"
gossip_listen = "${IP[$n]}:28571"
seeds = ["${IP[$other]}:28571"]
[[pool]]
name = "origin"
servers = [{ addr = "$ORIGIN" }]
[[route]]
pool = "origin"
TOML
done
"$BIN" sim origin --listen $ORIGIN >/dev/null 2>&1 & pids+=($!)
for n in a b; do
    if [ $n = "$NODE" ]; then
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.%p" \
            "$BIN" node --config "$RUN/$n.toml" 2>"$RUN/$n.log" & PID=$!
    else
        "$BIN" node --config "$RUN/$n.toml" 2>"$RUN/$n.log" &
    fi
    pids+=($!)
done
for _ in $(seq 1 300); do
    alive=$(curl -s "http://127.0.0.1:${ADMIN[a]}/cluster.json" | grep -o '"alive"' | wc -l || true)
    [ "$alive" = 2 ] && break; sleep 0.1
done
[ "$alive" = 2 ] || { echo "the two nodes never saw each other" >&2; exit 1; }
n=0
for i in $(seq 1 $((KEYS * 8 + 64))); do
    path="/obj/cg-$i?size=$SIZE&ttl=3600"
    cs=$(curl -s -H "Host: bench.example" -D - -o /dev/null "http://${IP[a]}:28581$path" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
    if [ "${cs%%;*}" = b ]; then echo "$path" >>"$RUN/keys"; n=$((n + 1)); [ $n = "$KEYS" ] && break; fi
done
{ echo 'paths = {'; sed 's/.*/"&",/' "$RUN/keys"; echo '}'; echo 'i = 0'
  echo 'request = function() i = i % #paths + 1; return wrk.format(nil, paths[i]) end'; } >"$RUN/keys.lua"
URL="http://${IP[${TO:-a}]}:28581/"
wrk -t1 -c"$C" -d2s -H "Host: bench.example" -s "$RUN/keys.lua" "$URL" >/dev/null
callgrind_control -z $PID >/dev/null; callgrind_control -i on $PID >/dev/null
out=$(wrk -t1 -c"$C" -d"$DUR" -H "Host: bench.example" -s "$RUN/keys.lua" "$URL")
callgrind_control -i off $PID >/dev/null; callgrind_control -d remote $PID >/dev/null
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
echo "reqs=$reqs $(grep -E 'Non-2xx|Socket' <<<"$out" | tr '\n' ' ')"
sleep 1
f=$(ls "$OUT"/callgrind.*.1 | head -1)
tot=$(grep -h "^totals" "$f" | head -1 | awk '{print $2}')
echo "node $NODE total=$tot per_req=$((tot / reqs))"
