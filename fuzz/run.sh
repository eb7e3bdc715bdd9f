#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other, one
# libFuzzer process with one job at a time, then prints the executions per target.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Each target starts from its seeds in git (corpus/<target>) plus what earlier runs found
# (corpus-run/<target>, not in git, where new inputs go). A crash stops nothing: its input is
# left in artifacts/<target>/ and the target is reported FAILED; replay it with
# `cargo +nightly fuzz run -s none -a <target> <file>`, fix the code, then keep the input in
# regressions/<target>/ so `cargo test` replays it on stable (see docs/fuzzing.md).
set -uo pipefail
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")" || exit 1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} CARGO_INCREMENTAL=0
flags=(-s none -a)
cargo +nightly fuzz build "${flags[@]}" || exit 1
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
mkdir -p logs
summary=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus-run/$t" "artifacts/$t"
    rm -f fuzz-*.log
    echo "== $t: ${secs}s" >&2
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$secs" -jobs=1 -workers=1 -print_final_stats=1 \
        >"logs/$t.log" 2>&1
    status=$?
    cat fuzz-*.log >>"logs/$t.log" 2>/dev/null
    rm -f fuzz-*.log
    # The job's final stats appear in both its own log and the parent's output: take one.
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | awk '$2 > m {m = $2} END {print m+0}')
    if [ "$status" -ne 0 ] || grep -q -E 'ERROR: libFuzzer|panicked at|Test unit written to' "logs/$t.log"; then
        result=FAILED
        failed=1
    else
        result=ok
    fi
    summary+=("$(printf '%-16s %12s execs  %s' "$t" "$execs" "$result")")
done
echo
echo "target           executions    result (${secs}s each; logs in fuzz/logs/)"
printf '%s\n' "${summary[@]}"
exit $failed
