#!/usr/bin/env bash
# npr against the PyTorch reference pipelines, side by side on the same files and the same
# machine (issue 13, BENCHMARKS.md): end-to-end training (files → loader → step) and the
# official evaluation loop, for the single-scale baseline network; then npr's own figures
# for both models (device-resident steps, end to end, peak memory) and the ratios.
#
#   scripts/bench_compare.sh [DATAROOT]
#
# DATAROOT holds label folders (DIR/{0_real,1_fake}/*.png, or a generator/class level
# above them). Without it, IMAGES_ON_DISK (default 512) natural-looking SIZE×SIZE PNGs are
# written to a temporary folder and removed afterwards.
# Environment: DEVICE (cuda if nvidia-smi sees a card, else cpu), BATCH (32), LOAD (256),
# CROP (224), SIZE (256, the generated images), IMAGES (1024 per direction), WORKERS (the
# number of cores: npr loader threads = PyTorch DataLoader workers), AMP (1 on CUDA: bf16
# autocast + channels-last on both sides), OUT (/tmp/npr_bench_compare: bench.json and the
# log), NPR (target/release/npr), PY (.venv/bin/python, or python3 with torch).
set -euo pipefail
cd "$(dirname "$0")/.."
NPR=${NPR:-target/release/npr}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ -z "${DEVICE:-}" ]; then
  if nvidia-smi -L >/dev/null 2>&1; then DEVICE=cuda; else DEVICE=cpu; fi
fi
BATCH=${BATCH:-32}
LOAD=${LOAD:-256}
CROP=${CROP:-224}
SIZE=${SIZE:-256}
IMAGES=${IMAGES:-1024}
WORKERS=${WORKERS:-$(nproc)}
OUT=${OUT:-/tmp/npr_bench_compare}
if [ "$DEVICE" = cpu ]; then AMP=${AMP:-0}; else AMP=${AMP:-1}; fi
amp_flag=(); [ "$AMP" = 1 ] && amp_flag=(--amp)
[ -x "$NPR" ] || { echo "error: $NPR not found; build it with: cargo build --release" >&2; exit 2; }
"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY cannot import torch" >&2; exit 2; }
mkdir -p "$OUT"

if [ -n "${1:-}" ]; then
  ROOT=$1
  FILES="the files of $ROOT"
  [ -d "$ROOT" ] || { echo "error: $ROOT is not a directory" >&2; exit 2; }
else
  ROOT=$(mktemp -d "${TMPDIR:-/tmp}/npr-bench-compare.XXXXXX")
  trap 'rm -rf "$ROOT"' EXIT
  "$PY" scripts/bench_loader.py --make-images "$ROOT" --count "${IMAGES_ON_DISK:-512}" --size "$SIZE" >/dev/null
  FILES="${IMAGES_ON_DISK:-512} generated $SIZE-px PNGs"
fi
# The same page-cache state for both sides: every file read once before timing.
find -L "$ROOT" -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) -print0 | xargs -0 cat >/dev/null

{
  echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
  echo "== setting: device $DEVICE, batch $BATCH, train $LOAD->$CROP px, test at full size ($FILES), $IMAGES images per direction, $WORKERS loader threads / DataLoader workers, amp $AMP"
  echo "== PyTorch reference (scripts/bench_reference.py)"
  "$PY" scripts/bench_reference.py --dataroot "$ROOT" --device "$DEVICE" --workers "$WORKERS" \
    --batch-size "$BATCH" --load-size "$LOAD" --crop-size "$CROP" --images "$IMAGES" "${amp_flag[@]}"
  echo "== npr bench"
  "$NPR" bench --device "$DEVICE" --dataroot "$ROOT" --workers "$WORKERS" --batch-size "$BATCH" \
    --load-size "$LOAD" --crop-size "$CROP" --images "$IMAGES" --steps 20 "${amp_flag[@]}" --json "$OUT/bench.json"
} 2>&1 | tee "$OUT/bench_compare.log"

"$PY" - "$OUT/bench_compare.log" "$OUT/bench.json" <<'EOF' | tee -a "$OUT/bench_compare.log"
import json, re, sys
log, figures = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
ref = {k: float(re.search(rf"reference {k} images/s: ([0-9.]+)", log).group(1)) for k in ("train", "test")}
base, att = figures["models"]
print("== ratios (same files, same machine, one run)")
print(f"end-to-end training, npr / PyTorch (baseline network): {base['e2e_train_ips'] / ref['train']:.2f}x "
      f"({base['e2e_train_ips']:.1f} vs {ref['train']:.1f} images/s)")
print(f"evaluation loop, npr / PyTorch validate(): {base['e2e_test_ips'] / ref['test']:.2f}x "
      f"({base['e2e_test_ips']:.1f} vs {ref['test']:.1f} images/s)")
print(f"npr end-to-end training / npr device-resident step: {100 * base['e2e_train_ips'] / base['step_train_ips']:.0f} %")
print(f"attention / baseline inference time: {base['step_infer_ips'] / att['step_infer_ips']:.2f}x device-resident, "
      f"{base['e2e_test_ips'] / att['e2e_test_ips']:.2f}x end to end")
if base.get("gpu_mib") and att.get("gpu_mib"):
    print(f"attention / baseline GPU memory (nvidia-smi, process): {att['gpu_mib'] / base['gpu_mib']:.2f}x "
          f"({att['gpu_mib']:.0f} vs {base['gpu_mib']:.0f} MiB)")
if base.get("host_peak_mib") and att.get("host_peak_mib"):
    b = base["host_peak_mib"] - base["host_before_mib"]
    a = att["host_peak_mib"] - att["host_before_mib"]
    print(f"attention / baseline host memory added by the model (VmHWM - VmRSS before): {a / b:.2f}x ({a:.0f} vs {b:.0f} MiB)")
EOF
