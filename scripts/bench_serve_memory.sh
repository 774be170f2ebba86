#!/usr/bin/env bash
# RSS of `npr serve` after a burst of large requests (BENCHMARKS.md, "npr serve: memory
# after a burst"). Trains a one-epoch checkpoint with configs/quick.yaml's model on a tiny
# synthetic set (it tests at full size, so uploads are scored whole, as in issue 27) unless
# CKPT is given, starts the server, and runs scripts/bench_serve_memory.py against it.
#   scripts/bench_serve_memory.sh [--side 2048] [--large 3] [--idle 3]
#   NPR_SERVE_ENV="MALLOC_CONF=..." to run the server with another allocator setting.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
npr=target/release/npr
[ -x "$npr" ] || cargo build --release --quiet
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -INT "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

ckpt="${CKPT:-}"
if [ -z "$ckpt" ]; then
  "$npr" synth --out "$work/synth" --seed 1 --size 64 --classes 2 --train-per-class 16 \
    --val-per-class 4 --test-per-family 3 >/dev/null
  "$npr" train --config configs/quick.yaml --out "$work/run" --device cpu \
    --set data.dataroot="$work/synth" --set train.epochs=1 --set train.batch_size=16 \
    --set test.sets.0.dataroot="$work/synth/test" > "$work/train.log" 2>&1 \
    || { echo "training failed:"; tail -20 "$work/train.log"; exit 1; }
  ckpt="$work/run"
fi
env ${NPR_SERVE_ENV:-} "$npr" serve --checkpoint "$ckpt" --addr 127.0.0.1:0 --device cpu \
  > "$work/serve.out" 2> "$work/serve.err" &
server_pid=$!
for _ in $(seq 1 150); do grep -q 'http://' "$work/serve.out" 2>/dev/null && break; sleep 0.2; done
url="$(grep -o 'http://[0-9.:]*/' "$work/serve.out")"
"$VIRTUAL_ENV/bin/python" scripts/bench_serve_memory.py --url "$url" --pid "$server_pid" "$@"
