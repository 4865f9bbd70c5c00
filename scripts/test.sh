#!/usr/bin/env bash
# README command 2: installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh [CMake options]   e.g. -DFFTMAT_WARNINGS_AS_ERRORS=ON, as CI runs it
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh -DFFTMAT_BUILD_TESTS=ON -DFFTMAT_BUILD_EXAMPLES=ON -DFFTMAT_BUILD_BENCHMARKS=ON "$@"
# The Llama-2 tokenizer check runs when the published tokenizer.model is available (it is beside
# the project on the development and CI machines); elsewhere ctest reports it as skipped.
if [[ -z "${FFTMAT_LLAMA2_TOKENIZER:-}" && -f ../shared/data/llama2-tokenizer.model ]]; then
  export FFTMAT_LLAMA2_TOKENIZER="$PWD/../shared/data/llama2-tokenizer.model"
fi
ctest --test-dir build --output-on-failure -j"$(nproc 2>/dev/null || echo 2)"
