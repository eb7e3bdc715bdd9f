#!/usr/bin/env bash
# Cache-hit benchmark, strait against HAProxy 2.6's cache (Debian package) side by side:
# same objects (from `strait sim origin`), server pinned to CPU 1, `wrk -t1` pinned to CPU 0,
# rounds interleaved, medians reported with CPU time per request (server CPU seconds during the
# run / requests). Needs: wrk, haproxy, taskset, curl; STRAIT_BIN (default target/release/strait).
#   ./topology/bench/hits.sh                 # 3 rounds x 10 s per cell
#   ROUNDS=1 DUR=5s ./topology/bench/hits.sh # quicker
#   TARGETS="strait" CELLS="1k:50" ./topology/bench/hits.sh
#   TARGETS="strait strait-routes" ./topology/bench/hits.sh   # + the same node behind a 5-route
#                                   table with host/prefix/regex/method matchers (routing cost)
#   TARGETS="strait strait-log haproxy haproxy-log" ./topology/bench/hits.sh  # + the access log on:
#                                   strait's [log] access file (text) beside HAProxy's
#                                   `option httplog` to a file (the cost of logging)
#   TARGETS="strait strait-b haproxy" STRAIT_BIN_B=/tmp/other ./topology/bench/hits.sh  # two strait
#                                   binaries (or one with STRAIT_ENV_B="VAR=1 ...") alternated in
#                                   the same rounds, each beside HAProxy
#   MISS=1 ./topology/bench/hits.sh  # miss path instead: `Cache-Control: no-store` objects, every
#                                   request goes to the origin (strait sim origin, on CPU 0 too)
#   MISS=1 METHOD=POST ./topology/bench/hits.sh  # a pass with bodies both ways: every request a
#                                   POST with a body of the cell's size (the origin answers 35 bytes)
#   MISS=1 METHOD=POST CHUNKED=1 ./topology/bench/hits.sh  # the same body sent chunked (one chunk)
#   MISS=1 METHOD=POST EXPECT=1 ./topology/bench/hits.sh   # with `Expect: 100-continue` (the body
#                                   still sent with the head, as a client that does not wait)
#   PERF_STAT=/tmp/s ./topology/bench/hits.sh  # + perf stat of each server's context switches and
#                                   system calls per run (PERF_EVENTS overrides the event list)
#   PERF_DIR=/tmp/p ./topology/bench/hits.sh   # + perf record of CPU 1 (the server) per run
#   SPLIT=1 ./topology/bench/hits.sh           # + the server's user and system µs/request per run
#   CPUS=1 ./topology/bench/hits.sh            # + each CPU's busy µs/request per run (CPU 0: wrk
#                                   and the origin; CPU 1: the server) and its idle share
#   NSTAT=1 ./topology/bench/hits.sh           # + the machine's TCP counters per request (nstat:
#                                   segments, pure and delayed ACKs; every socket counts)
#   PERF_CPU0=/tmp/c ./topology/bench/hits.sh  # + perf stat of CPU 0 (wrk and the origin: how
#                                   often they wake), the events as for PERF_STAT
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STRAIT_BIN:-$PWD/target/release/strait}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
TARGETS=${TARGETS:-"strait haproxy"}
CELLS=${CELLS:-"1k:50 1k:200 16k:50 256k:50"}
RUN=$(mktemp -d /tmp/strait-bench.XXXXXX)
ORIGIN_PORT=28080
declare -A PORT=([strait]=28107 [haproxy]=28105 [strait-routes]=28108 [strait-log]=28109 [haproxy-log]=28106 [strait-b]=28110)
MISS=${MISS:-0}
METHOD=${METHOD:-GET}
declare -A BYTES=([1k]=1024 [16k]=16384 [256k]=262144)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT

cat >"$RUN/node.toml" <<TOML
[node]
id = "bench"
listen = ["127.0.0.1:${PORT[strait]}"]
admin = "127.0.0.1:28197"
[storage]
ram = "256MiB"
[[pool]]
name = "origin"
servers = [{ addr = "127.0.0.1:$ORIGIN_PORT" }]
max_idle_per_server = ${MAX_IDLE:-1024}
[[route]]
pool = "origin"
TOML
sed -e "s/127.0.0.1:${PORT[strait]}/127.0.0.1:${PORT[strait-log]}/" -e "s/28197/28199/" "$RUN/node.toml" >"$RUN/node-log.toml"
sed -e "s/127.0.0.1:${PORT[strait]}/127.0.0.1:${PORT[strait-b]}/" -e "s/28197/28196/" "$RUN/node.toml" >"$RUN/node-b.toml"
cat >>"$RUN/node-log.toml" <<TOML
[log]
access = "$RUN/strait-access.log"
access_format = "text"
TOML
cat >"$RUN/node-routes.toml" <<TOML
[node]
id = "bench"
listen = ["127.0.0.1:${PORT[strait-routes]}"]
admin = "127.0.0.1:28198"
[storage]
ram = "256MiB"
[[pool]]
name = "origin"
servers = [{ addr = "127.0.0.1:$ORIGIN_PORT" }]
[[pool]]
name = "other"
servers = [{ addr = "127.0.0.1:$ORIGIN_PORT" }]
[[route]]
match = { host = "*.images.example" }
pool = "other"
[[route]]
match = { path_prefix = "/api/" }
pool = "other"
[[route]]
match = { path_regex = '\.(png|jpe?g|gif|css|js)$' }
pool = "other"
[[route]]
match = { method = ["POST", "PUT", "DELETE"] }
pool = "other"
[[route]]
pool = "origin"
TOML
cat >"$RUN/haproxy.cfg" <<CFG
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
    bind 127.0.0.1:${PORT[haproxy]}
    http-request cache-use hits
    http-response cache-store hits
    default_backend origin
backend origin
    http-reuse always
    server origin 127.0.0.1:$ORIGIN_PORT
CFG

# The same HAProxy with `option httplog` written to a file (stdout, redirected).
sed -e "s/^global$/global\n    log stdout format raw local0/" \
    -e "s/^defaults$/defaults\n    log global\n    option httplog/" \
    -e "s/127.0.0.1:${PORT[haproxy]}/127.0.0.1:${PORT[haproxy-log]}/" "$RUN/haproxy.cfg" >"$RUN/haproxy-log.cfg"

taskset -c 0 "$BIN" sim origin --listen 127.0.0.1:$ORIGIN_PORT >/dev/null & pids+=($!)
ORIGIN_PID=$!
sleep 0.3

start() {  # start TARGET -> SERVER_PID
    case $1 in
        strait) taskset -c 1 "$BIN" node --config "$RUN/node.toml" 2>"$RUN/strait.log" & ;;
        strait-routes) taskset -c 1 "$BIN" node --config "$RUN/node-routes.toml" 2>"$RUN/strait-routes.log" & ;;
        haproxy) taskset -c 1 haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.log" 2>&1 & ;;
        strait-b) env ${STRAIT_ENV_B:-} taskset -c 1 "${STRAIT_BIN_B:-$BIN}" node --config "$RUN/node-b.toml" 2>"$RUN/strait-b.log" & ;;
        strait-log) taskset -c 1 "$BIN" node --config "$RUN/node-log.toml" 2>"$RUN/strait-log.log" & ;;
        haproxy-log) taskset -c 1 haproxy -db -f "$RUN/haproxy-log.cfg" >"$RUN/haproxy-access.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:${PORT[$1]}/" && return 0; sleep 0.05; done
    echo "$1 did not start" >&2; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# "busy idle" ticks of CPU $1 (idle counts iowait too).
cpu_busy() { awk -v c="cpu$1" '$1 == c {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
split_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
url() {
    if [ "$MISS" = 1 ]; then
        echo "http://127.0.0.1:${PORT[$1]}/obj/$2?size=${BYTES[$2]}&cc=no-store"
    else
        echo "http://127.0.0.1:${PORT[$1]}/obj/$2?size=${BYTES[$2]}&ttl=3600"
    fi
}

: >"$RUN/results"
for round in $(seq 1 "$ROUNDS"); do
    for t in $TARGETS; do
        start "$t"
        for cell in $CELLS; do
            size=${cell%%:*}; conns=${cell##*:}
            for _ in 1 2 3 4; do curl -s -o /dev/null "$(url "$t" "$size")"; done
            script=()
            if [ "$METHOD" != GET ] && [ -n "${CHUNKED:-}" ]; then
                # The body in one chunk, the request written whole (wrk would add a
                # Content-Length to a body of its own).
                printf 'local n = %d\nlocal raw\nrequest = function()\n  raw = raw or string.format("%s %%s HTTP/1.1\\r\\nHost: %%s:%%s\\r\\nContent-Type: application/octet-stream\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n%%x\\r\\n%%s\\r\\n0\\r\\n\\r\\n", wrk.path, wrk.host, wrk.port, n, string.rep("x", n))\n  return raw\nend\n' \
                    "${BYTES[$size]}" "$METHOD" >"$RUN/method.lua"
                script=(-s "$RUN/method.lua")
            elif [ "$METHOD" != GET ]; then
                printf 'wrk.method = "%s"\nwrk.body = string.rep("x", %d)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' \
                    "$METHOD" "${BYTES[$size]}" >"$RUN/method.lua"
                [ -z "${EXPECT:-}" ] || echo 'wrk.headers["Expect"] = "100-continue"' >>"$RUN/method.lua"
                script=(-s "$RUN/method.lua")
            fi
            c0=$(cpu_ticks "$SERVER_PID"); s0=$(split_ticks "$SERVER_PID")
            [ -z "${NSTAT:-}" ] || nstat -n >/dev/null
            b0="$(cpu_busy 0) $(cpu_busy 1) $(cpu_ticks "$ORIGIN_PID")"
            # PERF_STAT=dir: the server's context switches and system calls during the run.
            if [ -n "${PERF_STAT:-}" ]; then
                perf stat -e "${PERF_EVENTS:-context-switches,syscalls:sys_enter_*}" -p "$SERVER_PID" \
                    -o "$PERF_STAT/$t-$size-$conns-r$round.stat" -- sleep "${DUR%s}" >/dev/null 2>&1 &
            fi
            # PERF_CPU0=dir: the same counts for CPU 0 (wrk and the origin: how often they wake).
            if [ -n "${PERF_CPU0:-}" ]; then
                perf stat -e "${PERF_EVENTS:-context-switches,syscalls:sys_enter_*}" -C 0 \
                    -o "$PERF_CPU0/$t-$size-$conns-r$round.stat" -- sleep "${DUR%s}" >/dev/null 2>&1 &
            fi
            # PERF_DIR=dir: a profile of CPU 1 (the server) for each run (PERF_ARGS adds options).
            if [ -n "${PERF_DIR:-}" ]; then
                perf record -q -C 1 -F 2999 ${PERF_ARGS:-} -o "$PERF_DIR/$t-$size-$conns-r$round.data" \
                    -- sleep "${DUR%s}" >/dev/null 2>&1 &
            fi
            out=$(taskset -c 0 wrk -t1 -c"$conns" -d"$DUR" --latency "${script[@]}" "$(url "$t" "$size")")
            c1=$(cpu_ticks "$SERVER_PID"); s1=$(split_ticks "$SERVER_PID")
            b1="$(cpu_busy 0) $(cpu_busy 1) $(cpu_ticks "$ORIGIN_PID")"
            rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
            reqs=$(awk '/requests in/ {print $1}' <<<"$out")
            p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}' <<<"$out")
            errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
            cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b-a)/hz*1e6/n}')
            echo "$t $size $conns $rps $p99 $cpu_us $errs" | tee -a "$RUN/results" >&2
            if [ -n "${SPLIT:-}" ]; then
                awk -v a="$s0" -v b="$s1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" -v t="$t" 'BEGIN {
                    split(a, x, " "); split(b, y, " ")
                    printf "  %s user %.2f / system %.2f µs per request\n", t, (y[1]-x[1])/hz*1e6/n, (y[2]-x[2])/hz*1e6/n }' >&2
            fi
            if [ -n "${NSTAT:-}" ]; then  # the machine's TCP counters per request (all sockets)
                nstat 2>/dev/null | awk -v n="$reqs" -v t="$t" '$1 ~ /^Tcp(Ext)?(OutSegs|InSegs|DelayedACKs|TCPPureAcks|TCPHPAcks|TCPHPHits|TCPAutoCorking|TCPOrigDataSent|TCPWinProbe|TCPFromZeroWindowAdv|TCPToZeroWindowAdv|TCPWantZeroWindowAdv|TCPBacklogCoalesce|TCPDelivered)$/ {
                    printf "  %s %s %.3f/request\n", t, $1, $2/n }' >&2
            fi
            if [ -n "${CPUS:-}" ]; then
                awk -v a="$b0" -v b="$b1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" -v t="$t" 'BEGIN {
                    split(a, x, " "); split(b, y, " ")
                    printf "  %s CPU 0 (wrk, origin) %.2f µs/request (origin %.2f), idle %.0f%%; CPU 1 (server) %.2f µs/request, idle %.0f%%\n", t,
                        (y[1]-x[1])/hz*1e6/n, (y[5]-x[5])/hz*1e6/n, 100*(y[2]-x[2])/((y[1]-x[1])+(y[2]-x[2])),
                        (y[3]-x[3])/hz*1e6/n, 100*(y[4]-x[4])/((y[3]-x[3])+(y[4]-x[4])) }' >&2
            fi
        done
        stop "$SERVER_PID"
    done
done

echo
printf '| server | object | conns | median req/s | median p99 ms | median CPU µs/req | req/s vs haproxy | CPU vs haproxy |\n|---|---|---:|---:|---:|---:|---:|---:|\n'
python3 - "$RUN/results" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault((f[0], f[1], f[2]), []).append((float(f[3]), float(f[4]), float(f[5])))
med = {k: (st.median(a for a, _, _ in v), st.median(b for _, b, _ in v), st.median(c for _, _, c in v)) for k, v in rows.items()}
for (t, size, c), (rps, p99, cpu) in sorted(med.items(), key=lambda kv: (kv[0][1], int(kv[0][2]), kv[0][0])):
    h = med.get(("haproxy", size, c))
    r1 = f"{rps / h[0]:.2f}" if h else "-"
    r2 = f"{cpu / h[2]:.2f}" if h else "-"
    print(f"| {t} | {size} | {c} | {rps:.0f} | {p99:.2f} | {cpu:.2f} | {r1} | {r2} |")
PY
