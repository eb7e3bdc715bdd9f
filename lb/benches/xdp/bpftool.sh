#!/usr/bin/env bash
# The XDP bench's established-DR figure measured the reference measurements' way
# (shared/bench/l4/scripts/run_xdp.sh): `bpftool prog run … repeat 1000000` on a 64-byte TCP
# ACK, beside a trivial `return XDP_TX` program, alternated ROUNDS times; medians and minima.
#
#   sudo lb/benches/xdp/bpftool.sh [ROUNDS]      # needs root, clang, bpftool, python3
#
# It compiles ebpf/director.bpf.c and ebpf/bench/xdp_tx.bpf.c of this tree, loads them with
# bpftool in a private mount namespace (its own bpffs: nothing is pinned on the host), installs
# one DR service (VIP 10.202.0.100:80, a one-entry table, one backend) and its generation, and
# lets the first repetition record the flow, so every later one is established. The kernel runs
# every repetition on the previous one's output, and the program forwards only frames addressed
# to the director's MAC (all zero here: STRAIT_DIRECTOR is not set; others are passed,
# pass_not_ours): the frame and the backend's MAC are that MAC, so the frame DR rewrote is still
# the director's and each repetition takes the whole established path. Output lines:
# `trivial median min`, `director median min`, and the ratio of the medians.
set -eu
ROUNDS=${1:-11}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=$(mktemp -d /tmp/st-xdp-bpftool.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root" >&2; exit 0; }
command -v bpftool >/dev/null || { echo "SKIP: bpftool not installed" >&2; exit 0; }
CFLAGS=(-O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I "$ROOT/ebpf/include")
clang "${CFLAGS[@]}" -c "$ROOT/ebpf/director.bpf.c" -o "$WORK/director.o"
clang "${CFLAGS[@]}" -c "$ROOT/ebpf/bench/xdp_tx.bpf.c" -o "$WORK/trivial.o"
python3 - "$WORK/ack.bin" <<'PY'
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton("10.202.1.2"), socket.inet_aton("10.202.0.100")
tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 1, 0x50, 0x18, 65535, 0, 0) + b"GET / HTTP"
c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = bytes.fromhex("000000000000" "02000000c1a1" "0800")
open(sys.argv[1], "wb").write(eth + ip + tcp)
PY
cat >"$WORK/run.sh" <<'EOF'
set -eu
W=$1; ROUNDS=$2; P=/sys/fs/bpf
mount -t bpf bpf $P
h() { python3 -c "import sys; print(' '.join(str(b) for b in bytes.fromhex(sys.argv[1])))" "$1"; }
bpftool prog loadall "$W/trivial.o" $P/t type xdp
bpftool prog loadall "$W/director.o" $P/d type xdp pinmaps $P/dm
# strait_service_key {vip, port, proto}; strait_service {slot 0, size 1, base 0, count 1,
# mode DR, hash, id 0, pad, gen 1}; strait_backend {ip, mac (the director's: all zero), port,
# flags 0, pad}; service_gen[0] = 1.
bpftool map update pinned $P/dm/services key $(h 0aca006400500600) \
  value $(h 000000000100000000000000010000000000000001000000)
bpftool map update pinned $P/dm/backends key 0 0 0 0 value $(h 0aca020b000000000000000000000000)
bpftool map update pinned $P/dm/service_gen key 0 0 0 0 value 1 0 0 0
run() { bpftool prog run pinned "$1" data_in "$W/ack.bin" repeat 1000000 |
  sed -n 's/.*Return value: \([0-9]*\).*average): \([0-9]*\)ns.*/\1 \2/p'; }
for _ in $(seq 1 "$ROUNDS"); do
  echo "$(run $P/t/bench_xdp_tx) $(run $P/d/strait_director)"
done
EOF
unshare -m bash "$WORK/run.sh" "$WORK" "$ROUNDS" >"$WORK/out.txt"
python3 - "$WORK/out.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
if any(r[0] != "3" or r[2] != "3" for r in rows):
    sys.exit("unexpected XDP action (want 3 = XDP_TX): %r" % rows)
t = [int(r[1]) for r in rows]
d = [int(r[3]) for r in rows]
print("trivial  median %d min %d ns" % (statistics.median(t), min(t)))
print("director median %d min %d ns (DR established)" % (statistics.median(d), min(d)))
print("ratio of medians %.2fx" % (statistics.median(d) / max(statistics.median(t), 1)))
PY
