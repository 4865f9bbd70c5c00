#!/usr/bin/env bash
# One-call check of the CUDA backend on a machine with a GPU (docs/gpu.md):
#   configure + build with CUDA, run the CUDA tests, run them under compute-sanitizer (memcheck,
#   racecheck), run the CUDA benchmarks writing JSON into OUT_DIR.
#
#   scripts/gpu_check.sh OUT_DIR [BUILD_DIR]        (env: BENCH_FILTER, BENCH_REPS, JOBS)
#
# Exits non-zero on the first failing step; every step's log lands in OUT_DIR.
set -euo pipefail

OUT_DIR=${1:?usage: scripts/gpu_check.sh OUT_DIR [BUILD_DIR]}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${2:-$ROOT/build-gpu}
JOBS=${JOBS:-$(nproc)}
BENCH_FILTER=${BENCH_FILTER:-.}
BENCH_REPS=${BENCH_REPS:-5}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
export PATH=/usr/local/cuda/bin:$PATH

step() { echo "== $*" | tee -a "$OUT_DIR/summary.txt"; }

step "device"
nvidia-smi | tee "$OUT_DIR/nvidia-smi.txt"

step "configure + build ($BUILD_DIR)"
cmake -S "$ROOT" -B "$BUILD_DIR" -DFFTMAT_CUDA=ON -DFFTMAT_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release \
  >"$OUT_DIR/configure.log" 2>&1
cmake --build "$BUILD_DIR" -j"$JOBS" --target test_cuda test_cuda_error_macros bench_cuda >"$OUT_DIR/build.log" 2>&1

step "CUDA tests"
# With a device the suite must run, not skip: treat a skip as a failure here.
set +e
"$BUILD_DIR/bin/test_cuda" --duration=true 2>&1 | tee "$OUT_DIR/test_cuda.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 77 ]; then echo "test_cuda skipped on a GPU machine" | tee -a "$OUT_DIR/summary.txt"; exit 1; fi
[ "$rc" -eq 0 ] || { echo "test_cuda failed ($rc)" | tee -a "$OUT_DIR/summary.txt"; exit 1; }
ctest --test-dir "$BUILD_DIR" -L cuda --output-on-failure 2>&1 | tee "$OUT_DIR/ctest.log"

step "compute-sanitizer memcheck"
compute-sanitizer --tool memcheck --leak-check full --error-exitcode 1 \
  "$BUILD_DIR/bin/test_cuda" 2>&1 | tee "$OUT_DIR/memcheck.log"

step "compute-sanitizer racecheck"
# Racecheck is slow: leave out the Llama-sized case (the small shapes cover the same kernels).
compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 1 \
  "$BUILD_DIR/bin/test_cuda" --test-case-exclude='*Llama*' 2>&1 | tee "$OUT_DIR/racecheck.log"

step "benchmarks"
"$BUILD_DIR/bin/bench_cuda" --benchmark_filter="$BENCH_FILTER" --benchmark_repetitions="$BENCH_REPS" \
  --benchmark_report_aggregates_only=true --benchmark_out="$OUT_DIR/bench_cuda.json" \
  --benchmark_out_format=json 2>&1 | tee "$OUT_DIR/bench_cuda.log"

step "done: all steps passed"
