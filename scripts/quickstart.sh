#!/usr/bin/env bash
# The main job on the embedded synthetic benchmark, on CPU or GPU (README.md):
#   1. bootstrap (venv with torch 2.11, release build)
#   2. npr synth      → datasets/synth (ForenSynths layout, seen and unseen families)
#   3. npr train      → runs/quick_baseline and runs/quick_attention (configs/quick.yaml)
#   4. npr test       → metrics per family, generalization gap, attention weights
# Re-running reuses the data set and replaces the runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
scripts/bootstrap.sh
npr=target/release/npr

[ -f datasets/synth/synth.json ] || $npr synth --out datasets/synth --seed 0

$npr train --config configs/quick.yaml --out runs/quick_baseline --overwrite \
  --set name=quick_baseline --set model.fusion=single --set 'model.scales=[0.5]'
$npr train --config configs/quick.yaml --out runs/quick_attention --overwrite

for run in quick_baseline quick_attention; do
  $npr test --checkpoint runs/$run --out runs/$run/test   # the recipe's weights (best)
done
echo "done: see runs/quick_baseline/test and runs/quick_attention/test (metrics.csv, summary.json)"
