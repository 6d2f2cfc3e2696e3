#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR WORK_DIR SECONDS: a bounded libFuzzer run from the committed seeds.
# New inputs are written to WORK_DIR; a crash, a sanitizer report, a leak, a 10-second input or more
# than 2 GB of memory fails the run, and the reproducer is left in WORK_DIR.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work"
cd "$work"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work" "$seeds"
