#!/usr/bin/env bash
# CPU training throughput alone and beside one competing busy process (issue 13,
# BENCHMARKS.md). For each setting, one epoch of `npr train` on the quick synthetic preset,
# first alone, then with `busy` (one process spinning on one core) running; prints the
# median images/s of the logged steps (the first one, warm-up, dropped) and the ratio.
#
#   scripts/bench_contention.sh                       # npr's own thread sizing
#   scripts/bench_contention.sh "OMP_NUM_THREADS=1" "NPR_THREADS=2 NPR_LOADER_THREADS=1"
#
# Each argument is one setting: environment assignments for `npr train` ("" = none).
# Environment: NPR (target/release/npr), DATA (datasets/synth, written if missing),
# OUT (/tmp/npr_contention), CONFIG (configs/quick.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
NPR=${NPR:-target/release/npr}
DATA=${DATA:-datasets/synth}
OUT=${OUT:-/tmp/npr_contention}
CONFIG=${CONFIG:-configs/quick.yaml}
[ -x "$NPR" ] || { echo "error: $NPR not found; build it with: cargo build --release" >&2; exit 2; }
[ -f "$DATA/synth.json" ] || "$NPR" synth --out "$DATA" --seed 0 >/dev/null
[ $# -gt 0 ] || set -- ""
mkdir -p "$OUT"

median_ips() {  # median of train_log.csv's images_per_s over the step rows after the first
  awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="images_per_s") c=i; next}
           $1=="step"{n++; if(n>1) print $c}' "$1" | sort -g |
    awk '{v[NR]=$1} END{if(NR==0){print "nan"; exit} print (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2}'
}

one_epoch() {  # one_epoch SETTING RUN_DIR → median images/s
  env $1 "$NPR" train --config "$CONFIG" --out "$2" --overwrite --device cpu \
    --set train.epochs=1 --set train.log_every=5 --set "data.dataroot=$DATA" \
    --set "test.sets.0.dataroot=$DATA/test" >"$2.log" 2>&1 \
    || { echo "error: npr train failed, see $2.log" >&2; exit 1; }
  median_ips "$2/train_log.csv"
}

printf '%-44s %12s %12s %8s\n' setting "alone img/s" "busy img/s" ratio
for setting in "$@"; do
  alone=$(one_epoch "$setting" "$OUT/alone")
  # The competitor: one process that keeps one core busy for the whole epoch.
  bash -c 'while :; do :; done' & busy=$!
  contended=$(one_epoch "$setting" "$OUT/busy")
  kill "$busy"; wait "$busy" 2>/dev/null || true
  printf '%-44s %12.1f %12.1f %7.0f%%\n' "${setting:-(npr defaults)}" "$alone" "$contended" \
    "$(awk -v a="$alone" -v b="$contended" 'BEGIN{print 100*b/a}')"
done
