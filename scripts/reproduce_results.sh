#!/usr/bin/env bash
# Reproduces the study on the embedded synthetic benchmark (--quick, the default) and copies
# the deliverables to results/ and figures/. On a fresh machine with no GPU and no data:
#   0. bootstrap     venv with torch 2.11, release build (scripts/bootstrap.sh)
#   1. synth         datasets/synth (ForenSynths layout, seen and unseen families)
#   2. ablate        every variant of configs/ablation.yaml × seeds on configs/quick.yaml
#                    (EPOCHS epochs), each cell tested on every family
#   3. sweeps        JPEG 75/90/100 and resolution 32/128 for the baseline and attention cells
#   4. report        npr report → tables, significance, hypotheses, figures
#   5. deliver       results/ and figures/ (and analysis/ablation_study.pdf)
# Re-running continues where an interrupted run stopped: finished cells and sweeps are
# skipped, interrupted cells resume from their last step; the report is always re-made.
#
# Usage: scripts/reproduce_results.sh [--quick] [--seeds 0,1] [--out runs/reproduce_quick]
#        scripts/reproduce_results.sh --full --data DIR [--device cuda] [--seeds 0,1,2]
#                                     [--out runs/reproduce_full] [--set KEY=VALUE]... [--dry-run]
# --full runs the study plan on the real data sets named in configs/test_suites.yaml (paths
# relative to DIR): every variant of configs/ablation.yaml on configs/attention_npr.yaml
# (ForenSynths 4-class training, 50 epochs), each cell tested on every suite with its
# official policy, the JPEG and resolution sweeps, then npr report into OUT/report.
# --dry-run checks the layout, prints the plan, the images per set and an estimated time,
# and runs nothing; a wrong tree exits 2 naming what is missing and where it is expected.
# --photos runs the study on photographs (README_ATTENTION.md, "Do the synthetic findings
# hold on photographs?"): fetch the packaged photographs and ESRGAN networks
# (scripts/get_photos.sh), build the photo benchmark (npr synth --reals), run every variant
# of configs/ablation_photos.yaml × seeds (default 0,1,2) on configs/photos_quick.yaml, then
# npr report into OUT/report (default runs/ablation_photos) and a copy in results/photos/.
# It leaves results/ and figures/ of the quick path alone. About 32 min on 2 CPU cores from
# nothing (2026-12-05: 1,936 s, of which the ablation and report 1,149 s); --dry-run builds
# the benchmark, prints the plan and trains nothing.
# NPR=path/to/npr uses that binary and skips the bootstrap.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"

mode=quick
seeds=
out=
data=
device=auto
dry_run=0
sets=()
epochs=${EPOCHS:-3}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --photos) mode=photos ;;
    --seeds) seeds=${2:?--seeds needs a list, e.g. 0,1}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --data) data=${2:?--data needs the folder that holds the data sets}; shift ;;
    --device) device=${2:?--device needs cpu, cuda or cuda:N}; shift ;;
    --set) sets+=(--set "${2:?--set needs KEY=VALUE}"); shift ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "reproduce_results.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
npr=${NPR:-target/release/npr}

if [ "$mode" = full ]; then
  [ -n "$data" ] || { echo "reproduce_results.sh: --full needs --data DIR (the folder that holds the data sets of configs/test_suites.yaml)" >&2; exit 2; }
  [ -d "$data" ] || { echo "reproduce_results.sh: --data $data is not a folder" >&2; exit 2; }
  seeds=${seeds:-0,1,2}
  out=${out:-runs/reproduce_full}
  [ -n "${NPR:-}" ] || scripts/bootstrap.sh
  full=("$npr" ablate --config configs/ablation.yaml --base configs/attention_npr.yaml
        --suites configs/test_suites.yaml --data "$data" --seeds "$seeds" --devices "$device"
        --out "$out" "${sets[@]}")
  echo "== check the data layout and plan"
  "${full[@]}" --dry-run || exit $?
  [ "$dry_run" = 1 ] && exit 0
  t0=$SECONDS
  echo "== ablation (resumable: the same command continues it)"
  "${full[@]}"
  echo "== robustness sweeps (baseline and attention cells)"
  for run in "$out"/baseline_seed* "$out"/attention_seed*; do
    [ -f "$run/test_jpeg/complete.json" ] || "$npr" test --checkpoint "$run" --device "$device" --sweep jpeg=75,90,100 --out "$run/test_jpeg"
    [ -f "$run/test_resize/complete.json" ] || "$npr" test --checkpoint "$run" --device "$device" --sweep resize=128,512 --out "$run/test_resize"
  done
  echo "== report"
  "$npr" report --runs "$out" --out "$out/report"
  echo "done in $((SECONDS - t0)) s; report: $out/report/report.md"
  exit 0
fi
if [ "$mode" = photos ]; then
  seeds=${seeds:-0,1,2}
  out=${out:-runs/ablation_photos}
  t0=$SECONDS
  [ -n "${NPR:-}" ] || scripts/bootstrap.sh
  commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "== [1/4] photographs and up-samplers (scripts/get_photos.sh)"
  scripts/get_photos.sh
  echo "== [2/4] photo benchmark (npr synth --reals)"
  [ -f datasets/photo_bench/synth.json ] || "$npr" synth --reals datasets/photos --out datasets/photo_bench --seed 0
  study=("$npr" ablate --config configs/ablation_photos.yaml --seeds "$seeds" --devices "$device"
         --out "$out" "${sets[@]}")
  if [ "$dry_run" = 1 ]; then
    "${study[@]}" --dry-run
    exit $?
  fi
  t_study=$SECONDS
  echo "== [3/4] ablation ($seeds × every variant of configs/ablation_photos.yaml; resumable)"
  "${study[@]}"
  echo "== [4/4] report"
  "$npr" report --runs "$out" --out "$out/report"
  rm -rf results/photos
  mkdir -p results/photos
  # The failure-case contact sheets show crops of the photographs, most of them not CC0 (GPL,
  # LGPL, CC-BY-SA, package licences; datasets/photos/manifest.tsv): they stay in $out/report, not in the repo.
  cp "$out"/report/report.md "$out"/report/*.csv results/photos/
  for f in "$out"/report/*.png; do
    case $(basename "$f") in failure_cases_*) ;; *) cp "$f" results/photos/ ;; esac
  done
  local_report=$out/report
  case $out in /*) ;; *) local_report=../../$out/report ;; esac
  sed -i "s#](failure_cases_#]($local_report/failure_cases_#g" results/photos/report.md
  {
    echo "# Results: photo benchmark (\`npr synth --reals\`): real photographs, fakes made by up-samplers"
    echo
    echo "- made: $(date -u +%Y-%m-%d) by \`scripts/reproduce_results.sh --photos --seeds $seeds\`"
    echo "- commit: $commit (the tree the binary was built from)"
    echo "- machine: $(nproc) CPU cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'); \`--devices $device\` (each run's meta.json names the device it trained on)"
    echo "- preset: configs/ablation_photos.yaml on configs/photos_quick.yaml (48-px crops of the photographs of scripts/get_photos.sh, 8 epochs), seeds $seeds"
    echo "- time: $((SECONDS - t0)) s in all, of which ablation and report $((SECONDS - t_study)) s"
    echo
    echo "Open [report.md](report.md) first. PDF figures and the failure-case contact sheets"
    echo "(crops of photographs, most not CC0: GPL, LGPL, CC-BY-SA, package licences; not committed) stay in $out/report."
  } > results/photos/README.md
  echo "done in $((SECONDS - t0)) s; report: $out/report/report.md, copy in results/photos/"
  exit 0
fi
seeds=${seeds:-0,1}
out=${out:-runs/reproduce_quick}
stage_names=()
stage_secs=()
stage() {  # stage NAME COMMAND...: prints progress, runs, records the time
  local name=$1; shift
  echo "== [$((${#stage_names[@]} + 1))/5] $name"
  local t0=$SECONDS
  "$@"
  stage_names+=("$name")
  stage_secs+=($((SECONDS - t0)))
}

synth() {
  [ -f datasets/synth/synth.json ] || $npr synth --out datasets/synth --seed 0
}

ablate() {
  $npr ablate --config configs/ablation.yaml --base configs/quick.yaml --seeds "$seeds" \
    --set "train.epochs=$epochs" --out "$out"
}

sweeps() {
  local run
  for run in "$out"/baseline_seed* "$out"/attention_seed*; do
    [ -d "$run" ] || continue
    if [ ! -f "$run/test_jpeg/complete.json" ]; then
      echo "   $run: JPEG 75, 90, 100"
      $npr test --checkpoint "$run" --sweep jpeg=75,90,100 --out "$run/test_jpeg" > "$run/test_jpeg.log" 2>&1
    fi
    if [ ! -f "$run/test_resize/complete.json" ]; then
      echo "   $run: resolution 32, 128 (shorter side, before the set's policy)"
      $npr test --checkpoint "$run" --sweep resize=32,128 --out "$run/test_resize" > "$run/test_resize.log" 2>&1
    fi
  done
}

report() {
  $npr report --runs "$out" --out "$out/report"
}

deliver() {
  local r=$out/report
  rm -rf results figures
  mkdir -p results/confusion_matrices figures
  cp "$r"/report.md "$r"/*.csv "$r"/ablation_table.md results/
  cp "$r/runs.csv" results/metrics.csv
  cp "$r"/ablation_study.pdf "$r"/ablation_study.png results/
  cp "$r"/ablation_study.pdf analysis/ablation_study.pdf
  cp "$r"/failure_cases_*.png results/
  local run
  for run in "$out"/*_seed*; do
    [ -f "$run/test/confusion.csv" ] && cp "$run/test/confusion.csv" "results/confusion_matrices/$(basename "$run").csv"
  done
  local att
  att=$(ls -d "$out"/attention_seed* | head -1)
  cp "$att/test/attention_weights.npz" results/attention_weights.npz
  local f
  for f in roc_curves attention_heatmaps generalization_plot tsne_embeddings robustness training_curves; do
    cp "$r/$f.pdf" "$r/$f.png" figures/
  done
  # The report links its figures by bare name; in results/ they live in ../figures/.
  sed -i -e 's#](\([a-z_]*\)\.\(pdf\|png\))#](../figures/\1.\2)#g' \
    -e 's#](../figures/ablation_study\.#](ablation_study.#g' \
    -e 's#](../figures/failure_cases_#](failure_cases_#g' results/report.md
  {
    echo "# Results: synthetic benchmark (\`npr synth\`), not real generators"
    echo
    echo "- made: $(date -u +%Y-%m-%d) by \`scripts/reproduce_results.sh --quick --seeds $seeds\`"
    echo "- commit: $commit (the tree the binary was built from)"
    echo "- machine: $(nproc) CPU cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'), no GPU used"
    echo "- preset: configs/ablation.yaml variants on configs/quick.yaml (64-px images, 56-px crops), train.epochs=$epochs, seeds $seeds"
    echo
    echo "Open [report.md](report.md) first. Figures are in [../figures](../figures)."
    echo "Everything here is what the script wrote; re-running it regenerates it (PDF object"
    echo "order varies between runs; PNG, SVG and CSV files are byte-identical)."
  } > results/README.md
}

t_all=$SECONDS
echo "== [0/5] bootstrap"
scripts/bootstrap.sh
# The revision the binary was just built from, recorded before anything else can change.
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
stage "synthetic benchmark" synth
stage "ablation ($seeds × every variant, $epochs epochs)" ablate
stage "robustness sweeps" sweeps
stage "report" report
stage "deliver results/ and figures/" deliver

echo
echo "done in $((SECONDS - t_all)) s, set-up included; the stages after set-up:"
for i in "${!stage_names[@]}"; do
  printf '  %-45s %5d s\n' "${stage_names[$i]}" "${stage_secs[$i]}"
done
echo "results: results/ (open results/report.md), figures: figures/, runs: $out"
