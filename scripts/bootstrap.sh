#!/usr/bin/env bash
# Installs what npr needs and builds the release binary. Idempotent: a second run only
# checks and returns within seconds.
#   - Debian packages cmake and nasm (libjpeg-turbo is built from source by turbojpeg-sys)
#     and make (jemalloc is built from source by tikv-jemalloc-sys)
#   - .venv/ with requirements.txt (torch==2.11.0 provides libtorch; ~4.7 GB the first time)
#   - target/release/npr
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v nasm >/dev/null || need_apt+=(nasm)
command -v make >/dev/null || need_apt+=(make)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]} (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp=".venv/.requirements.sha"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing requirements.txt into .venv (the torch wheel is large the first time)"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

cargo build --release --quiet
echo "bootstrap: ready (target/release/npr)"
