#!/usr/bin/env bash
# L4 benchmark: new connections/s and keep-alive requests/s from a client namespace to three
# nginx backends, through strait's director (XDP and userspace datapaths, DR and NAT modes),
# through nftables DNAT (numgen, kube-proxy style) and directly to one backend (the ceiling),
# all in the same run, rounds interleaved, medians and ratios printed. Root; needs wrk, nginx,
# nft, curl; STRAIT_BIN (default target/release/strait).
#   ./topology/bench/l4.sh                                  # 3 rounds x 10 s, every mode
#   ROUNDS=1 DUR=5s MODES="direct-dr xdp-dr" ./topology/bench/l4.sh
# Modes: direct-dr xdp-dr us-dr (layout l4-dr.toml: one LAN, backends hold the VIP on lo);
#        direct-nat nft xdp-nat us-nat (layout l4-nat.toml: the director joins two LANs);
#        xdpgen-dr xdpgen-nat: the XDP director attached in generic (skb) mode;
#        xdpthr-dr xdpthr-nat: the XDP director with `threaded_napi = true`;
#        bare-dr: not strait: ebpf/bench/xdp_fwd_one.bpf.c, every frame to the VIP sent to b1
#        with no logic at all, on the director host (the floor of any XDP forwarder here);
#        bare-thr-dr: the same with threaded NAPI on the director's eth0;
#        xdp1-dr: the XDP director with b1 as its only backend (as direct and bare-dr: one nginx).
# Bridge ports: `sim up` puts the pass-all XDP program only on the director's ports (port_xdp
# in l4-*.toml). PORT_XDP=all puts it on every port (the layout before port_xdp existed: each
# port then copies every frame), PORT_XDP=off on none (then only a generic-mode director
# forwards: native XDP_TX on a veth needs a program on the peer).
# Load: `wrk -t1 -c50 -d$DUR -H 'Connection: close'` (one request per connection) and the same
# without the header (keep-alive), as the shared L4 anchors measure (../shared/bench/l4, relative
# to the repository root).
# "director pkt/s" = frames the director forwarded during the run (its per-backend packet counters
# plus NAT replies, from its admin) / duration.
# Everything lives in namespaces st-l4dr-* / st-l4nat-*; they are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STRAIT_BIN:-$PWD/target/release/strait}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
CONNS=${CONNS:-50}
MODES=${MODES:-"direct-dr bare-dr xdp-dr xdpthr-dr us-dr direct-nat nft xdp-nat xdpthr-nat us-nat"}
KINDS=${KINDS:-"close keepalive"}
RUN=$(mktemp -d /tmp/strait-l4bench.XXXXXX)
RES=$RUN/results.tsv
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
for t in wrk nginx nft curl; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[[ -x $BIN ]] || { echo "no $BIN: cargo build --release" >&2; exit 1; }

LAYOUT=""        # the layout that is up: dr | nat | ""
pids=()
DIRECTOR_PID=""
log() { echo "# $(date +%T) $*" >&2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
down() {
  [[ -n $DIRECTOR_PID ]] && { kill "$DIRECTOR_PID" 2>/dev/null || true; wait "$DIRECTOR_PID" 2>/dev/null || true; }
  DIRECTOR_PID=""
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  [[ -n $LAYOUT ]] && "$BIN" sim down --topology "topology/bench/l4-$LAYOUT.toml" >/dev/null 2>&1 || true
  LAYOUT=""
}
trap 'down; rm -rf "$RUN"' EXIT
trap 'exit 130' INT TERM

# Backend addresses and the VIP of a layout.
backends() { if [[ $1 == dr ]]; then echo 10.73.0.11 10.73.0.12 10.73.0.13; else echo 10.74.1.11 10.74.1.12 10.74.1.13; fi; }
vip() { if [[ $1 == dr ]]; then echo 10.73.0.100; else echo 10.74.0.100; fi; }

nginx_conf() { # name -> config text (one worker, no log, a body naming the backend)
  cat <<EOF
daemon off;
worker_processes 1;
pid $RUN/$1/nginx.pid;
error_log $RUN/$1/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $RUN/$1/tmp;
  proxy_temp_path $RUN/$1/tmp;
  fastcgi_temp_path $RUN/$1/tmp;
  uwsgi_temp_path $RUN/$1/tmp;
  scgi_temp_path $RUN/$1/tmp;
  server { listen 80 backlog=4096; location / { return 200 "$1\n"; } }
}
EOF
}

layout_up() { # dr | nat
  [[ $LAYOUT == "$1" ]] && return 0
  down
  "$BIN" sim down --topology "topology/bench/l4-$1.toml" >/dev/null 2>&1 || true
  "$BIN" sim up --topology "topology/bench/l4-$1.toml" --logs "$RUN/sim-$1" >/dev/null
  LAYOUT=$1
  local p=st-l4$1- v; v=$(vip "$1")
  nsx ${p}lb ip addr add "$v/32" dev eth0
  local i=1
  for b in $(backends "$1"); do
    mkdir -p "$RUN/b$i/tmp"; nginx_conf "b$i" >"$RUN/b$i/nginx.conf"
    [[ $1 == dr ]] && nsx ${p}b$i ip addr add "$v/32" dev lo
    ip netns exec ${p}b$i nginx -c "$RUN/b$i/nginx.conf" >/dev/null 2>&1 & pids+=($!)
    i=$((i + 1))
  done
  local dev
  for dev in $(ip -n ${p}sw -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -v '^lo$\|^br-'); do
    case ${PORT_XDP:-director} in
      off) ip -n ${p}sw link set dev "$dev" xdp off ;;
      all) ip -n ${p}sw link show dev "$dev" | grep -q prog/xdp ||
             ip -n ${p}sw link set dev "$dev" xdpdrv obj /tmp/strait-xdp-pass.o sec xdp ;;
      director) ;;
      *) echo "PORT_XDP must be director, all or off" >&2; exit 1 ;;
    esac
  done
  for b in $(backends "$1"); do wait_http "$1" "http://$b/" || { echo "backend $b down" >&2; exit 1; }; done
}

mac_list() { # netns dev -> the MAC as a C byte list (0xaa,0xbb,...)
  ip -n "$1" -o link show dev "$2" | grep -o 'link/ether [0-9a-f:]*' | awk '{print $2}' |
    sed 's/\([0-9a-f][0-9a-f]\)/0x\1/g; s/:/,/g'
}

wait_http() { # layout url
  local t
  for t in $(seq 100); do nsx "st-l4$1-client" curl -s -m 1 -o /dev/null "$2" && return 0; sleep 0.1; done
  return 1
}

director_conf() { # layout mode datapath [xdp_mode] [threaded_napi]
  local b addrs=""
  for b in $(backends "$1"); do addrs+="{ addr = \"$b\" }, "; [[ -n ${ONE_BACKEND:-} ]] && break; done
  local inner=""; [[ $1 == nat ]] && inner='inner_interface = "eth1"'
  cat <<EOF
[director]
id = "bench"
interface = "eth0"
$inner
datapath = "$3"
xdp_mode = "${4:-auto}"
${5:+threaded_napi = $5}
admin = "127.0.0.1:9190"
[[service]]
vip = "$(vip "$1"):80"
mode = "$2"
backends = [${addrs%, }]
health = { kind = "tcp", interval = "1s", timeout = "500ms", rise = 1, fall = 2 }
EOF
}

mode_up() { # mode -> sets URL (not in a subshell: it keeps LAYOUT, pids and DIRECTOR_PID)
  case $1 in
    direct-dr) layout_up dr; URL="http://10.73.0.11/" ;;
    direct-nat) layout_up nat; URL="http://10.74.1.11/" ;;
    nft)
      layout_up nat
      nsx st-l4nat-lb nft -f - <<EOF
table ip strait_bench {
  chain pre { type nat hook prerouting priority dstnat;
    ip daddr 10.74.0.100 tcp dport 80 dnat to numgen random mod 3 map { 0 : 10.74.1.11, 1 : 10.74.1.12, 2 : 10.74.1.13 }
  }
}
EOF
      URL="http://10.74.0.100/" ;;
    bare-dr | bare-thr-dr)
      layout_up dr
      local dm sm
      dm=$(mac_list st-l4dr-b1 eth0); sm=$(mac_list st-l4dr-lb eth0)
      clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -DVIP=0x0a490064 "-DDMAC=$dm" "-DSMAC=$sm" \
        -c ebpf/bench/xdp_fwd_one.bpf.c -o "$RUN/fwd_one.o"
      nsx st-l4dr-lb ip link set dev eth0 xdpdrv obj "$RUN/fwd_one.o" sec xdp
      [[ $1 == bare-thr-dr ]] && nsx st-l4dr-lb sh -c 'echo 1 > /sys/class/net/eth0/threaded'
      wait_http dr http://10.73.0.100/ || { echo "the bare forwarder does not forward" >&2; exit 1; }
      URL="http://10.73.0.100/" ;;
    xdp-dr | us-dr | xdp-nat | us-nat | xdpgen-dr | xdpgen-nat | xdpthr-dr | xdpthr-nat | xdp1-dr)
      local lay=${1#*-} dp=xdp xm=auto thr="" one=""; [[ $1 == us-* ]] && dp=userspace; [[ $1 == xdpgen-* ]] && xm=generic
      [[ $1 == xdpthr-* ]] && thr=true
      [[ $1 == xdp1-* ]] && one=1
      layout_up "$lay"
      ONE_BACKEND=$one director_conf "$lay" "$lay" "$dp" "$xm" "$thr" >"$RUN/director-$1.toml"
      # `ip netns exec` execs the director: $! is the director itself (not a subshell).
      ip netns exec "st-l4$lay-lb" "$BIN" director --config "$RUN/director-$1.toml" >"$RUN/director-$1.log" 2>&1 &
      DIRECTOR_PID=$!
      sleep 1
      wait_http "$lay" "http://$(vip "$lay")/" || { echo "director ($1) does not forward:" >&2; cat "$RUN/director-$1.log" >&2; exit 1; }
      URL="http://$(vip "$lay")/" ;;
    *) echo "unknown mode $1" >&2; exit 1 ;;
  esac
}

mode_down() {
  case $1 in
    nft) nsx st-l4nat-lb nft delete table ip strait_bench ;;
    bare-dr | bare-thr-dr)
      nsx st-l4dr-lb ip link set dev eth0 xdpdrv off
      nsx st-l4dr-lb sh -c 'echo 0 > /sys/class/net/eth0/threaded' 2>/dev/null || true ;;
    xdp-* | us-* | xdpgen-* | xdpthr-* | xdp1-*)
      if ! kill "$DIRECTOR_PID" 2>/dev/null; then
        echo "the director of $1 exited during the run; its log:" >&2
        tail -20 "$RUN/director-$1.log" >&2
      fi
      wait "$DIRECTOR_PID" || true; DIRECTOR_PID="" ;;
  esac
}

fwd_packets() { # layout -> packets the running director forwarded so far (backends' packets + NAT replies), or "-"
  [[ -n $DIRECTOR_PID ]] || { echo -; return; }
  ip netns exec "st-l4$1-lb" "$BIN" ctl --admin 127.0.0.1:9190 --json stats 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
n = sum(b["packets"] for s in v["services"] for b in s["backends"]) + v["counters"].get("nat_reply", 0)
print(n)' 2>/dev/null || echo -
}

spread() { # layout url -> "b1:n b2:n b3:n" over 30 fresh connections
  local i; for i in $(seq 30); do nsx "st-l4$1-client" curl -s -m 1 "$2" || echo fail; done | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'
}

printf 'mode\tkind\tround\treq_per_s\tp99\terrors\tpkt_per_s\n' >"$RES"
secs=${DUR%s}
for r in $(seq "$ROUNDS"); do
  for m in $MODES; do
    mode_up "$m"; url=$URL
    lay=dr; [[ $m == *nat || $m == nft ]] && lay=nat
    log "round $r $m $url spread: $(spread $lay "$url")"
    for k in $KINDS; do
      hdr=(); [[ $k == close ]] && hdr=(-H 'Connection: close')
      before=$(fwd_packets $lay)
      out=$(nsx "st-l4$lay-client" wrk -t1 -c"$CONNS" -d"$DUR" --latency "${hdr[@]}" "$url" 2>&1)
      rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
      p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
      errs=$(awk '/Socket errors|Non-2xx/ {printf "%s ", $0}' <<<"$out")
      after=$(fwd_packets $lay)
      pps=-; [[ $before != - && $after != - ]] && pps=$(( (after - before) / secs ))
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$k" "$r" "$rps" "$p99" "${errs:-0}" "$pps" | tee -a "$RES" >&2
    done
    mode_down "$m"
  done
done

python3 - "$RES" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for kind in ("close", "keepalive"):
    for m in dict.fromkeys(r["mode"] for r in rows):
        v = [float(r["req_per_s"]) for r in rows if r["mode"] == m and r["kind"] == kind and r["req_per_s"]]
        if v:
            med[(m, kind)] = statistics.median(v)
pps = {}
for (m, kind) in med:
    v = [float(r["pkt_per_s"]) for r in rows if r["mode"] == m and r["kind"] == kind and r["pkt_per_s"] not in ("", "-")]
    if v:
        pps[(m, kind)] = statistics.median(v)
print(f"{'mode':<12}{'kind':<11}{'median req/s':>14}{'vs direct':>11}{'vs nft':>9}{'director pkt/s':>16}")
for (m, kind), v in med.items():
    base = med.get(("direct-dr" if m.endswith("dr") else "direct-nat", kind))
    nft = med.get(("nft", kind))
    rd = f"{v / base:.2f}x" if base else "-"
    rn = f"{v / nft:.2f}x" if nft and not m.endswith("dr") else "-"
    p = f"{pps[(m, kind)]:,.0f}" if (m, kind) in pps else "-"
    print(f"{m:<12}{kind:<11}{v:>14,.0f}{rd:>11}{rn:>9}{p:>16}")
PY
