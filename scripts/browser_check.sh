#!/usr/bin/env bash
# The real-browser test of `npr serve` (README.md, `npr serve`): installs headless Chromium
# and chromedriver from Debian if missing, trains a tiny checkpoint, starts `npr serve` on
# a free local port with a folder, uploads an image through the page in Chromium, checks
# that a score and four weights are shown, and saves a screenshot.
#   scripts/browser_check.sh [SCREENSHOT]      (default target/browser_check/serve.png)
# Prints one SKIP line and exits 0 only where Chromium cannot be installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
shot="${1:-target/browser_check/serve.png}"
mkdir -p "$(dirname "$shot")"
shot="$(cd "$(dirname "$shot")" && pwd)/$(basename "$shot")"
npr=target/release/npr
[ -x "$npr" ] || cargo build --release --quiet

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "browser check: installing chromium and chromium-driver (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    echo "SKIP browser check: Chromium could not be installed from Debian (apt-get failed)"
    exit 0
  fi
fi
python="$VIRTUAL_ENV/bin/python"; [ -x "$python" ] || python=python3

work="$(mktemp -d)"
server_pid=""; driver_pid=""
cleanup() {
  [ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill -INT "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A tiny benchmark and a tiny four-scale attention model (1 epoch; scores are not the point).
"$npr" synth --out "$work/synth" --seed 1 --size 64 --classes 2 --train-per-class 16 \
  --val-per-class 4 --test-per-family 3 >/dev/null
cat > "$work/tiny.yaml" <<YAML
name: browser_check
model: { backbone: resnet18, fusion: attention, scales: [0.25, 0.5, 0.75, 1.0] }
data: { dataroot: $work/synth, load_size: 64, crop_size: 56, workers: 2 }
train: { epochs: 1, batch_size: 16, log_every: 10, seed: 0 }
test: { batch_size: 16, sets: [ { name: synth, dataroot: $work/synth/test, resize: false, crop: none } ] }
YAML
"$npr" train --config "$work/tiny.yaml" --out "$work/run" --device cpu > "$work/train.log" 2>&1 \
  || { echo "browser check FAILED: training the tiny checkpoint:"; tail -20 "$work/train.log"; exit 1; }

"$npr" serve --checkpoint "$work/run" --addr 127.0.0.1:0 --root "$work/synth/test" --device cpu \
  > "$work/serve.out" 2> "$work/serve.err" &
server_pid=$!
for _ in $(seq 1 100); do grep -q 'http://' "$work/serve.out" 2>/dev/null && break; sleep 0.2; done
url="$(grep -o 'http://[0-9.:]*/' "$work/serve.out" || true)"
[ -n "$url" ] || { echo "browser check FAILED: npr serve did not start:"; cat "$work/serve.err"; exit 1; }

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
chromedriver --port="$port" > "$work/driver.log" 2>&1 &
driver_pid=$!
for _ in $(seq 1 50); do
  "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/status', timeout=1)" 2>/dev/null && break
  sleep 0.2
done

"$python" scripts/browser_check.py --driver-port "$port" --url "$url" --screenshot "$shot" \
  --image "$work/synth/test/nearest_x2/1_fake/00000_landscape.png" --chromium "$(command -v chromium)"

# Ctrl-C: the server answers what is in flight and exits 130.
kill -INT "$server_pid"
set +e; wait "$server_pid"; code=$?; set -e
server_pid=""
[ "$code" -eq 130 ] || { echo "browser check FAILED: npr serve exited $code after SIGINT, expected 130"; exit 1; }
echo "browser check: npr serve stopped with exit 130 on SIGINT"
echo "browser_check: 1 passed, 0 failed"
