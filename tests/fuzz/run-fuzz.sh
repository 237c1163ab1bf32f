#!/usr/bin/env bash
# Run the fuzz targets: each for SECONDS (default 60) from its seed corpus.
#
#   tests/fuzz/run-fuzz.sh BUILD_DIR [SECONDS] [TARGET...]
#
# BUILD_DIR is a build configured with CC=clang -Dfuzz=true
# -Db_sanitize=address,undefined.  New inputs go to a scratch corpus, not
# into the repository's seeds; a crash leaves its input in
# BUILD_DIR/fuzz-artifacts/ and fails the run.  The last line per target is
# libFuzzer's summary (executions, coverage).
#
# tests/fuzz/corpus/TARGET holds the seeds make-seeds writes (named for what
# they are) and, named by their SHA-1, inputs of long runs that reach
# features the seeds do not, so that a short run starts deep.  Add them with
#   fuzz-TARGET -merge=1 tests/fuzz/corpus/TARGET LONG_RUN_CORPUS
set -euo pipefail
build=$1
seconds=${2:-60}
shift $(( $# > 1 ? 2 : 1 ))
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=()
    for t in "$build"/tests/fuzz/fuzz-*; do
        [ -f "$t" ] && [ -x "$t" ] && targets+=("$(basename "$t" | sed 's/^fuzz-//')")
    done
fi
mkdir -p "$build/fuzz-artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
    scratch=$(mktemp -d)
    seeds=$here/corpus/$t
    mkdir -p "$seeds"
    echo "==> fuzz-$t for ${seconds}s"
    if ! "$build/tests/fuzz/fuzz-$t" -max_total_time="$seconds" \
            -timeout=60 -rss_limit_mb=2048 -max_len=16384 \
            -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
            "$scratch" "$seeds" > "$scratch.log" 2>&1; then
        tail -60 "$scratch.log"
        echo "fuzz-$t FAILED: see $build/fuzz-artifacts/"
        status=1
    else
        grep -E '^#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|cov:' \
            "$scratch.log" | tail -3
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit $status
