#!/usr/bin/env bash
# One-call GPU check for a lent device machine (BENCHMARKS.md, GPU). Prepare here:
#   cargo build --release && mkdir -p .gpu && cp target/release/npr .gpu/
#   (and list .gpu in .git/info/exclude), then run on the device with carry [".gpu"]:
#   scripts/gpu_check.sh
# It uses the device machine's own torch libraries, makes a synthetic set there, and prints:
#   - `npr bench` train-step / inference images/s, fp32 and bf16 autocast (224 px, batch 64)
#   - a 1-epoch bf16 training run of the attention model on the synthetic set, then a test
#   - scripts/bench_compare.sh: npr against the PyTorch reference pipelines on the same
#     256-px PNG files (end-to-end bf16 training, the official validate() loop), peak GPU
#     memory per model, and the ratios the targets of BENCHMARKS.md are stated in
# Everything it prints is also written under $OUT (or /tmp/gpu_check). DEVICE=cpu runs the
# same steps on CPU with tiny sizes, to try the script before spending device time.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}
NPR=${NPR:-.gpu/npr}
[ -x "$NPR" ] || NPR=target/release/npr
if [ -z "${LD_LIBRARY_PATH:-}" ] && python3 -c 'import torch' 2>/dev/null; then
  export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
fi
if [ "$DEVICE" = cpu ]; then SIZE=56; BATCH=8; STEPS=3; else SIZE=224; BATCH=64; STEPS=30; fi

{
  echo "== device"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "== bench fp32"; "$NPR" bench --device "$DEVICE" --batch-size $BATCH --crop-size $SIZE --steps $STEPS
  echo "== bench bf16"; "$NPR" bench --device "$DEVICE" --batch-size $BATCH --crop-size $SIZE --steps $STEPS --amp
  echo "== synth"; "$NPR" synth --out /tmp/gpu_synth --seed 0 --force
  echo "== train (attention, bf16, 1 epoch)"
  "$NPR" train --config configs/quick.yaml --out /tmp/gpu_run --overwrite --device "$DEVICE" \
    --set train.epochs=1 --set train.amp=true --set train.channels_last=true \
    --set data.dataroot=/tmp/gpu_synth --set 'test.sets.0.dataroot=/tmp/gpu_synth/test'
  echo "== test"; "$NPR" test --checkpoint /tmp/gpu_run/best.safetensors --out /tmp/gpu_run/test --device "$DEVICE"
  echo "== side by side with PyTorch (scripts/bench_compare.sh)"
  if [ "$DEVICE" = cpu ]; then compare=(IMAGES=128 IMAGES_ON_DISK=64 SIZE=64 LOAD=64 CROP=56); else compare=(IMAGES=4096 IMAGES_ON_DISK=1024); fi
  env "${compare[@]}" DEVICE="$DEVICE" NPR="$NPR" OUT="$OUT/compare" scripts/bench_compare.sh
} 2>&1 | tee "$OUT/gpu_check.log"
cp /tmp/gpu_run/train_log.csv /tmp/gpu_run/test/metrics.csv "$OUT/" 2>/dev/null || true
