#!/usr/bin/env bash
# The test command (README.md): bootstraps, then runs the whole suite on CPU.
# Tests share the release build with the binary, so CI compiles libtorch bindings once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
scripts/bootstrap.sh
cargo test --release -- "$@"
