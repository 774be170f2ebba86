#!/usr/bin/env bash
# Starting `npr train` on a large data set (issue 31, BENCHMARKS.md "Starting on a large
# data set"): discovery, the split check on a first and a second start, time to the first
# step and peak memory, for 220k hard-linked 32-px PNGs (warm) and 50k distinct ≈ 100 KB
# files with the page cache dropped before each start (root only). Writes ≈ 5 GB under
# --work (default /tmp/npr_split_bench) and removes it at the end unless --keep.
#   scripts/bench_split_check.sh [--files 220000] [--cold-files 50000] [--before OTHER_NPR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
[ -x target/release/npr ] || cargo build --release --quiet
exec "$VIRTUAL_ENV/bin/python" scripts/bench_split_check.py "$@"
