#!/usr/bin/env bash
# Cluster hit benchmark: what a remote hit (node a asks the owner b over the peer protocol and
# streams b's object) costs against a local hit at the owner, side by side in one run.
# Two nodes (one worker each) share CPU 1; `wrk -t1` and the origin are on CPU 0. Rounds are
# interleaved; medians of req/s, p99 and CPU per request (both nodes' CPU seconds during the
# run / requests). Needs: wrk, taskset, curl; STRAIT_BIN (default target/release/strait).
#   ./topology/bench/cluster.sh                  # 3 rounds x 10 s per cell
#   ROUNDS=1 DUR=5s CELLS="1k:50" ./topology/bench/cluster.sh
#   KEYS=200 ./topology/bench/cluster.sh         # 200 keys per size, cycled (few coalesced)
#   HOT_TTL=1s KEYS=200 ./topology/bench/cluster.sh   # with hot copies at a (cache.hot_ttl)
#   PERF_DIR=/tmp/p KEYS=200 ./topology/bench/cluster.sh   # also perf record CPU 1, remote runs
#   SYSCALLS=1 PERF_DIR=/tmp/p …                # also count each node's system calls
#   SPLIT=1 KEYS=200 ./topology/bench/cluster.sh  # also each node's user and system µs/request
#   (PERF_ARGS="--call-graph dwarf" adds call graphs)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STRAIT_BIN:-$PWD/target/release/strait}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
CELLS=${CELLS:-"1k:50 16k:50 256k:50"}
KEYS=${KEYS:-1}
HOT_TTL=${HOT_TTL:-0s}
RUN=$(mktemp -d /tmp/strait-cluster-bench.XXXXXX)
ORIGIN=127.0.0.1:28280
declare -A IP=([a]=127.0.0.61 [b]=127.0.0.62)
# The cache key holds the Host: every node is asked for the same one.
HOST="Host: bench.example"
declare -A BYTES=([1k]=1024 [16k]=16384 [256k]=262144)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT

for n in a b; do
    other=$([ $n = a ] && echo b || echo a)
    cat >"$RUN/$n.toml" <<TOML
[node]
id = "$n"
listen = ["${IP[$n]}:28281"]
admin = "127.0.0.1:$([ $n = a ] && echo 28291 || echo 28292)"
workers = 1
[storage]
ram = "256MiB"
$([ "$HOT_TTL" = 0s ] || printf '[cache]\nhot_ttl = "%s"' "$HOT_TTL")
[cluster]
peer_listen = "${IP[$n]}:28270"
gossip_listen = "${IP[$n]}:28271"
seeds = ["${IP[$other]}:28271"]
[[pool]]
name = "origin"
servers = [{ addr = "$ORIGIN" }]
[[route]]
pool = "origin"
TOML
done

taskset -c 0 "$BIN" sim origin --listen $ORIGIN >/dev/null & pids+=($!)
declare -A PID
for n in a b; do
    taskset -c 1 "$BIN" node --config "$RUN/$n.toml" 2>"$RUN/$n.log" & PID[$n]=$!; pids+=($!)
done
for n in a b; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://${IP[$n]}:28281/" && break; sleep 0.05; done
done
for _ in $(seq 1 100); do
    alive=$(curl -s http://127.0.0.1:28291/cluster.json | grep -o '"alive"' | wc -l)
    [ "$alive" = 2 ] && break; sleep 0.1
done
[ "$alive" = 2 ] || { echo "the two nodes never saw each other" >&2; exit 1; }

# KEYS keys per size that b owns (asked through a, the Cache-Status names b first). With one
# key, requests at a that arrive while a lookup is out wait on it (coalesced), so b sees few
# lookups; with many keys (real traffic) nearly every request at a is its own lookup.
declare -A KEY NKEYS
for size in 1k 16k 256k; do
    n=0
    for i in $(seq 1 $((KEYS * 8 + 64))); do
        path="/obj/$size-$i?size=${BYTES[$size]}&ttl=3600"
        cs=$(curl -s -H "$HOST" -D - -o /dev/null "http://${IP[a]}:28281$path" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
        if [ "${cs%%;*}" = b ]; then
            [ $n = 0 ] && KEY[$size]=$path
            echo "$path" >>"$RUN/keys-$size"
            n=$((n + 1))
            [ $n = "$KEYS" ] && break
        fi
    done
    [ "$n" = "$KEYS" ] || { echo "only $n keys owned by b for $size" >&2; exit 1; }
    # wrk cycles over them.
    { echo 'paths = {'; sed 's/.*/"&",/' "$RUN/keys-$size"; echo '}'
      echo 'i = 0'
      echo 'request = function() i = i % #paths + 1; return wrk.format(nil, paths[i]) end'; } >"$RUN/keys-$size.lua"
done

cpu_ticks() { awk '{print $14+$15}' "/proc/${PID[a]}/stat" "/proc/${PID[b]}/stat" | paste -sd+ | bc; }
# User and system ticks of a and b ("a_usr a_sys b_usr b_sys"), for SPLIT=1.
split_ticks() { awk '{printf "%s %s ", $14, $15}' "/proc/${PID[a]}/stat" "/proc/${PID[b]}/stat"; }
# Context switches of a and b (voluntary + involuntary, every thread), then their minor page
# faults, for SPLIT=1.
switch_faults() { for n in a b; do cat /proc/"${PID[$n]}"/task/*/status | awk '/ctxt_switches/ {s += $2} END {printf "%d ", s}'; done
    awk '{printf "%s ", $10}' "/proc/${PID[a]}/stat" "/proc/${PID[b]}/stat"; }
: >"$RUN/results"
for round in $(seq 1 "$ROUNDS"); do
    for cell in $CELLS; do
        size=${cell%%:*}; conns=${cell##*:}
        # local: the owner b answers from its store; remote: a asks b for every request.
        for path in local remote; do
            node=$([ $path = local ] && echo b || echo a)
            url="http://${IP[$node]}:28281${KEY[$size]}"
            cs=$(curl -s -H "$HOST" -D - -o /dev/null "$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
            case "$path:$cs" in
                local:"b; hit"*|remote:"b; hit"*", a; fwd=miss; detail=peer") ;;
                remote:"a; hit"*"; detail=hot") [ "$HOT_TTL" != 0s ] || { echo "a hot copy with hot_ttl 0" >&2; exit 1; } ;;
                *) echo "unexpected Cache-Status for $path: $cs" >&2; exit 1 ;;
            esac
            c0=$(cpu_ticks); s0=$(split_ticks); w0=$(switch_faults)
            # PERF_DIR=dir: a flat profile of CPU 1 (both nodes) for each remote run.
            if [ -n "${PERF_DIR:-}" ] && [ $path = remote ]; then
                perf record -q -C 1 -F 2999 ${PERF_ARGS:-} -o "$PERF_DIR/$size-$conns-r$round.data" -- sleep "${DUR%s}" >/dev/null 2>&1 &
                # Counting every system call slows both nodes down: only with SYSCALLS=1.
                [ -z "${SYSCALLS:-}" ] || for n in a b; do
                    perf stat -e 'syscalls:sys_enter_*' -p "${PID[$n]}" -o "$PERF_DIR/$size-$conns-r$round-$n.stat" -- sleep "${DUR%s}" >/dev/null 2>&1 &
                done
            fi
            out=$(taskset -c 0 wrk -t1 -c"$conns" -d"$DUR" --latency -H "$HOST" -s "$RUN/keys-$size.lua" "$url")
            c1=$(cpu_ticks); s1=$(split_ticks); w1=$(switch_faults)
            rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
            reqs=$(awk '/requests in/ {print $1}' <<<"$out")
            p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}' <<<"$out")
            errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
            cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b-a)/hz*1e6/n}')
            echo "$path $size $conns $rps $p99 $cpu_us $errs" | tee -a "$RUN/results" >&2
            # SPLIT=1: where that CPU went, µs per request: a's user and system time, b's.
            if [ -n "${SPLIT:-}" ]; then
                echo "$s0 $s1" | awk -v n="$reqs" -v hz="$(getconf CLK_TCK)" -v p="$path $size" \
                    '{f = 1e6 / hz / n; printf "  %s: a usr %.2f sys %.2f, b usr %.2f sys %.2f\n", p, ($5-$1)*f, ($6-$2)*f, ($7-$3)*f, ($8-$4)*f}' >&2
                echo "$w0 $w1" | awk -v n="$reqs" -v p="$path $size" \
                    '{printf "  %s: per 100 requests: context switches a %.1f, b %.1f; page faults a %.1f, b %.1f\n", p, ($5-$1)*100/n, ($6-$2)*100/n, ($7-$3)*100/n, ($8-$4)*100/n}' >&2
            fi
        done
    done
done
curl -s http://$ORIGIN/_origin/stats | python3 -c '
import json, sys
c = {p: n for p, n in json.load(sys.stdin).items() if p.startswith("/obj/")}
print(f"origin: {len(c)} keys fetched, at most {max(c.values(), default=0)} time(s) each (one expected)")' >&2

echo
printf '| path | object | conns | median req/s | median p99 ms | median CPU µs/req (both nodes) | req/s vs local | CPU vs local |\n|---|---|---:|---:|---:|---:|---:|---:|\n'
python3 - "$RUN/results" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault((f[0], f[1], f[2]), []).append((float(f[3]), float(f[4]), float(f[5])))
med = {k: tuple(st.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
for (p, size, c), (rps, p99, cpu) in sorted(med.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    l = med.get(("local", size, c))
    print(f"| {p} | {size} | {c} | {rps:.0f} | {p99:.2f} | {cpu:.2f} | {rps / l[0]:.2f} | {cpu / l[2]:.2f} |")
PY
