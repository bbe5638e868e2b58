#!/usr/bin/env bash
# Runs one libFuzzer target (test/fuzz/meson.build, scripts/fuzz):
#     run_fuzzer.sh FUZZER SEED_CORPUS WORK_DIR [SECONDS]
# for SECONDS (default $RIAKFS_FUZZ_SECONDS, else 5), starting from the seeds in the tree. New
# inputs go to WORK_DIR/corpus (never into the tree), a crashing input to WORK_DIR/crashes/;
# libFuzzer then exits non-zero and prints the report and how to reproduce it.
set -euo pipefail
fuzzer=$1
seeds=$2
work=$3
seconds=${4:-${RIAKFS_FUZZ_SECONDS:-5}}
mkdir -p "$work/corpus" "$work/crashes"
# The sanitizer test setup sends reports to files (test/sanitizers/meson.build); a fuzzer's
# report belongs with libFuzzer's own output, on stderr.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=stderr:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=stderr"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/crashes/" "$work/corpus" "$seeds"
