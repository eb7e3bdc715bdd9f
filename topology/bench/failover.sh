#!/usr/bin/env bash
# Director failover, strait's VRRP against keepalived's, in one topology and one session:
# `strait sim run failover` for every cell (VRRP × advert interval × kill), TRIALS times each,
# interleaved; per cell the median takeover on the wire (last frame through the old master →
# first through the new one, ms), the failed probes (a new connection every 5 ms) and the long
# connections that delivered their whole response (of 20). Needs root, keepalived, and
# STRAIT_BIN (default target/release/strait). Run from the repository root:
#   ./topology/bench/failover.sh
#   TRIALS=1 VRRPS=strait INTERVALS=20ms KILLS=sigkill ./topology/bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${STRAIT_BIN:-$PWD/target/release/strait}
TRIALS=${TRIALS:-3}
VRRPS=${VRRPS:-"strait keepalived"}
INTERVALS=${INTERVALS:-"100ms 20ms"}
KILLS=${KILLS:-"sigkill link sigterm"}
OUT=$(mktemp -d /tmp/strait-failover-bench.XXXXXX)
declare -A GAP FAILED KEPT
for trial in $(seq "$TRIALS"); do
    for interval in $INTERVALS; do
        for kill in $KILLS; do
            for vrrp in $VRRPS; do
                cell="$vrrp $interval $kill"
                log="$OUT/${vrrp}-${interval}-${kill}-${trial}.txt"
                "$BIN" sim run failover --vrrp "$vrrp" --kill "$kill" \
                    --advert-interval "$interval" --logs "$OUT/logs" >"$log" 2>&1 || true
                gap=$(sed -n 's/.*takeover on the wire: \([0-9.]*\) ms.*/\1/p' "$log")
                failed=$(sed -n 's/.*probes, \([0-9]*\) failed.*/\1/p' "$log")
                kept=$(sed -n 's/.*connections: \([0-9]*\)\/.*/\1/p' "$log")
                GAP[$cell]+="${gap:-nan} "
                FAILED[$cell]+="${failed:-nan} "
                KEPT[$cell]+="${kept:-nan} "
                echo "trial $trial: $cell: takeover ${gap:-?} ms, failed ${failed:-?}, kept ${kept:-?}/20" >&2
            done
        done
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "nan")}'; }
printf '| vrrp | advert | kill | takeover ms (median; trials) | failed probes | long kept /20 |\n|---|---|---|---:|---:|---:|\n'
for interval in $INTERVALS; do
    for kill in $KILLS; do
        for vrrp in $VRRPS; do
            cell="$vrrp $interval $kill"
            printf '| %s | %s | %s | %s (%s) | %s (%s) | %s (%s) |\n' "$vrrp" "$interval" "$kill" \
                "$(echo "${GAP[$cell]}" | median)" "$(echo "${GAP[$cell]}" | xargs | tr ' ' '/')" \
                "$(echo "${FAILED[$cell]}" | median)" "$(echo "${FAILED[$cell]}" | xargs | tr ' ' '/')" \
                "$(echo "${KEPT[$cell]}" | median)" "$(echo "${KEPT[$cell]}" | xargs | tr ' ' '/')"
        done
    done
done
echo "raw output: $OUT" >&2
