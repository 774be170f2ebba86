#!/usr/bin/env bash
# The test command (README.md): bootstraps, then runs the whole suite on CPU.
# Tests share the release build with the binary, so CI compiles libtorch bindings once.
# It also fetches the small set of real photographs and the esrgan-slim up-sampler that
# the up-sampler tests read (scripts/get_photos.sh --small: pip and npm, about 28 MB the
# first time, then only checked); offline, those tests print "skipped: …" instead, unless
# NPR_REQUIRE_UPSAMPLERS is set (CI sets it: .ci/run).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
scripts/bootstrap.sh
scripts/get_photos.sh --small ||
  echo "test: scripts/get_photos.sh --small failed; the up-sampler tests will say skipped" >&2
cargo test --release -- "$@"
