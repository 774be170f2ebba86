#!/usr/bin/env bash
# Loader throughput, npr (Rust) vs the official PyTorch pipeline, on the same files and
# the same number of threads/worker processes (BENCHMARKS.md).
#
#   scripts/bench_loader.sh [DATAROOT] [IMAGES]
#
# DATAROOT holds label folders (e.g. DIR/{0_real,1_fake}/*.png). Without it, a temporary
# folder with IMAGES_ON_DISK (default 512) natural-looking 256×256 PNGs is made and
# removed afterwards. IMAGES (default 2000) images are loaded, cycling over the files.
# Environment: WORKERS (2), BATCH (32), LOAD (256), CROP (224), IMAGES_ON_DISK (512).
# Needs target/release/npr (cargo build --release) and .venv/bin/python (torch, pillow;
# torchvision if present, otherwise the same transforms by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

NPR=target/release/npr
PY=.venv/bin/python
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-32}
LOAD=${LOAD:-256}
CROP=${CROP:-224}
IMAGES=${2:-2000}

[[ -x $NPR ]] || { echo "error: $NPR not found; build it with: cargo build --release" >&2; exit 2; }
[[ -x $PY ]] || { echo "error: $PY not found; create the venv first (see README)" >&2; exit 2; }

if [[ -n ${1:-} ]]; then
    ROOT=$1
    [[ -d $ROOT ]] || { echo "error: $ROOT is not a directory" >&2; exit 2; }
else
    ROOT=$(mktemp -d "${TMPDIR:-/tmp}/npr-bench-loader.XXXXXX")
    trap 'rm -rf "$ROOT"' EXIT
    "$PY" scripts/bench_loader.py --make-images "$ROOT" --count "${IMAGES_ON_DISK:-512}" --size 256
fi

# Same page-cache state for both: read every file once before timing.
find -L "$ROOT" -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) -print0 \
    | xargs -0 cat > /dev/null

# One thread per worker and nothing else: no BLAS/OpenMP threads in the Python workers.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=$WORKERS

rust_out=$("$NPR" bench --loader --dataroot "$ROOT" --workers "$WORKERS" --batch-size "$BATCH" \
    --load-size "$LOAD" --crop-size "$CROP" --images "$IMAGES")
torch_out=$("$PY" scripts/bench_loader.py --dataroot "$ROOT" --workers "$WORKERS" --batch-size "$BATCH" \
    --load-size "$LOAD" --crop-size "$CROP" --images "$IMAGES")
rust_line=$(grep -m1 'loader images/s:' <<< "$rust_out") || { echo "error: no 'loader images/s:' line from $NPR:" >&2; echo "$rust_out" >&2; exit 1; }
torch_line=$(grep -m1 'torch images/s:' <<< "$torch_out") || { echo "error: no 'torch images/s:' line from the PyTorch reference" >&2; exit 1; }

echo "$rust_line"
echo "$torch_line"
rust=$(awk '{print $3}' <<< "$rust_line")
torch=$(awk '{print $3}' <<< "$torch_line")
awk -v r="$rust" -v t="$torch" -v w="$WORKERS" \
    'BEGIN { printf "ratio npr/torch: %.2fx (%s workers each; npr ships uint8 batches, torch normalises on the CPU)\n", r / t, w }'
