#!/usr/bin/env bash
# The device check of the CUDA backend (docs/gpu.md), for a bare GPU machine: one with the CUDA
# toolkit, its driver, CMake and a host compiler, but none of the -dev packages the CPU build
# takes from Debian (Eigen, FFTW, doctest, Google Benchmark).
#
#   scripts/gpu_check.sh prepare [DEPS_DIR]         once, on a machine where scripts/install_deps.sh ran:
#                                                   copies those headers, CMake package files and shared
#                                                   libraries (about 15 MB) into DEPS_DIR (default .gpu_deps,
#                                                   git-ignored), keeping their /usr layout
#   scripts/gpu_check.sh run OUT_DIR [DEPS_DIR]     on the GPU machine: configures against DEPS_DIR alone,
#                                                   builds only the CUDA targets, then runs the CUDA tests,
#                                                   compute-sanitizer memcheck on a subset and racecheck on the
#                                                   one-token kernel, and a short benchmark filter
#
# `run` writes into OUT_DIR: summary.txt (device, each step's status and seconds), build.log,
# test_cuda.log, memcheck.log, racecheck.log, bench_cuda.log and bench_cuda.json. Every step has a
# time limit (together 470 s, so that the whole check stays under 8 minutes); a failing step is
# recorded and the later steps still run (a failed build stops the check). Exit status: 0 when
# every step passed.
# Environment: BUILD_DIR (default build-gpu), BENCH_FILTER, JOBS, LIMIT_SCALE (multiplies every
# time limit, for machines slower than the GPU machine's 16 cores), SKIP_DEVICE_STEPS=1 (configure,
# build and the dependency audit only: what a machine without a GPU can check).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2; }

# Each entry: a path under /usr (a file, a folder, or a glob) that the CUDA targets' configure and
# build need. The FFTW libraries are the float and double ones FindFFTW3.cmake asks for.
DEPS=(
  include/eigen3 share/eigen3/cmake
  include/fftw3.h "lib/x86_64-linux-gnu/libfftw3.so*" "lib/x86_64-linux-gnu/libfftw3f.so*"
  include/doctest lib/cmake/doctest
  include/benchmark "lib/x86_64-linux-gnu/libbenchmark.so*" lib/x86_64-linux-gnu/libbenchmark_main.a
  lib/x86_64-linux-gnu/cmake/benchmark
)

prepare() {
  local deps_dir=${1:-$ROOT/.gpu_deps} entry path found
  local staging
  mkdir -p "$(dirname "$deps_dir")"
  staging=$(mktemp -d "$(dirname "$deps_dir")/.gpu_deps.XXXXXX")  # complete or not at all
  trap 'rm -rf "$staging"' EXIT
  for entry in "${DEPS[@]}"; do
    found=0
    for path in /usr/$entry; do
      [[ -e $path ]] || continue
      found=1
      mkdir -p "$staging$(dirname "$path")"
      cp -a "$path" "$staging$(dirname "$path")/"
    done
    ((found)) || { echo "gpu_check prepare: /usr/$entry is missing (run scripts/install_deps.sh)" >&2; exit 1; }
  done
  rm -rf "$deps_dir"
  mv "$staging" "$deps_dir"
  trap - EXIT
  echo "gpu_check prepare: $(du -sh "$deps_dir" | cut -f1) in $deps_dir"
}

run_check() {
  local out_dir=${1:?usage: scripts/gpu_check.sh run OUT_DIR [DEPS_DIR]}
  local deps_dir=${2:-$ROOT/.gpu_deps}
  local build_dir=${BUILD_DIR:-$ROOT/build-gpu}
  local jobs=${JOBS:-$(nproc)}
  local bench_rows='block_circulant|block_circulant_graph|block_circulant_bf16|block_circulant_tf32|block_circulant_bf16gemm|block_circulant_gate_up'
  local dense_rows='dense_fp16/(11008x4096|4096x11008)/T(1|256)/cold'
  local bench_filter=${BENCH_FILTER:-"^(($bench_rows)/(11008x4096|4096x11008|11008x4096x2)/b64/T(1|256)/cold|$dense_rows)\$"}
  local failed=0 check_start=$SECONDS
  [[ -d $deps_dir/usr ]] || { echo "gpu_check: no $deps_dir/usr; run 'scripts/gpu_check.sh prepare' first" >&2; exit 1; }
  deps_dir=$(cd "$deps_dir" && pwd)
  mkdir -p "$out_dir"
  out_dir=$(cd "$out_dir" && pwd)
  [[ -d /usr/local/cuda/bin ]] && export PATH="/usr/local/cuda/bin:$PATH"
  : >"$out_dir/summary.txt"
  note() { echo "$*" | tee -a "$out_dir/summary.txt"; }
  # step NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND under a time limit, appending to LOG.
  step() {
    local name=$1 limit=$(($2 * ${LIMIT_SCALE:-1})) log=$3 start rc
    shift 3
    start=$(date +%s)
    set +e
    timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    set -e
    note "$name: $([[ $rc -eq 0 ]] && echo passed || echo "FAILED (exit $rc$([[ $rc -eq 124 ]] && echo ", over ${limit}s"))") in $(($(date +%s) - start)) s"
    return $rc
  }

  note "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ ${SKIP_DEVICE_STEPS:-0} != 1 ]]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee -a "$out_dir/summary.txt"
  fi
  note "nvcc: $(nvcc --version | tail -1)"

  # Only the folder provides Eigen, FFTW, doctest and Google Benchmark (CMAKE_PREFIX_PATH is
  # searched before the system's prefixes); the examples need more and stay off.
  : >"$out_dir/build.log"
  step configure 40 "$out_dir/build.log" cmake -S "$ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$deps_dir/usr" -DFFTMAT_CUDA=ON -DFFTMAT_BUILD_TESTS=ON -DFFTMAT_BUILD_BENCHMARKS=ON \
    -DFFTMAT_BUILD_EXAMPLES=OFF -DFFTMAT_INSTALL=OFF -DFFTMAT_WARNINGS_AS_ERRORS=ON || exit 1
  step build 130 "$out_dir/build.log" cmake --build "$build_dir" -j"$jobs" \
    --target test_cuda test_cuda_host bench_cuda || exit 1
  # The audit: no header or library of the build came from the system's -dev packages.
  step "dependency audit" 10 "$out_dir/build.log" "${BASH_SOURCE[0]}" audit "$build_dir" || failed=1
  if [[ ${SKIP_DEVICE_STEPS:-0} == 1 ]]; then
    note "device steps skipped (SKIP_DEVICE_STEPS=1)"
    return $failed
  fi

  local bin=$build_dir/bin
  : >"$out_dir/test_cuda.log"
  step "test_cuda_host" 10 "$out_dir/test_cuda.log" "$bin/test_cuda_host" || failed=1
  # With a device the suite must run: its skip code (77) counts as a failure here.
  step "test_cuda" 105 "$out_dir/test_cuda.log" "$bin/test_cuda" --duration=true || failed=1

  : >"$out_dir/memcheck.log"
  # Not the two-stream case: it checks that the streams overlap, which the instrumentation need
  # not preserve.
  step "memcheck (streams, graphs, chunks, circulants)" 60 "$out_dir/memcheck.log" \
    compute-sanitizer --tool memcheck --leak-check full --error-exitcode 1 "$bin/test_cuda" \
    --test-case='*one stream*,*in-place*,*CUDA graph*,*T = 1 replays*,*small chunk*,*circulant matches*,*argument errors*,*stacked rows*,*fits 48 KB*' ||
    failed=1
  : >"$out_dir/racecheck.log"
  step "racecheck (one-token kernel)" 30 "$out_dir/racecheck.log" \
    compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 1 --kernel-name kns=one_token_product \
    "$bin/test_cuda" --test-case='*small chunk*,*shift matrix*,*in-place*' || failed=1

  : >"$out_dir/bench_cuda.log"
  # An iteration queues a batch of up to 55 products (the cold rotation) and reports the time of
  # one, so a repetition's wall time is about the batch size times min_time: 0.005 s keeps the 18
  # rows near 45 s with thousands of products per repetition.
  step "bench_cuda" 85 "$out_dir/bench_cuda.log" "$bin/bench_cuda" --benchmark_filter="$bench_filter" \
    --benchmark_repetitions=3 --benchmark_min_time=0.005 --benchmark_report_aggregates_only=true \
    --benchmark_out="$out_dir/bench_cuda.json" --benchmark_out_format=json || failed=1
  note "$([[ $failed -eq 0 ]] && echo "all steps passed" || echo "some steps FAILED") in $((SECONDS - check_start)) s"
  return $failed
}

# Lists the headers (compiler dependency files) and shared libraries (ldd) of the built CUDA
# targets that come from the system's Eigen, FFTW, doctest or Google Benchmark packages.
audit_dependencies() {
  local build_dir=$1 pattern='/usr/include/(eigen3|doctest|benchmark|fftw3)|/usr/lib/x86_64-linux-gnu/lib(fftw3|benchmark)'
  local hits
  hits=$( (find "$build_dir" -name '*.d' -path '*CMakeFiles*' -exec cat {} + 2>/dev/null
           ninja -C "$build_dir" -t deps 2>/dev/null || true
           for exe in test_cuda test_cuda_host bench_cuda; do ldd "$build_dir/bin/$exe"; done) |
          grep -E -o "(^|[[:space:]])($pattern)[^[:space:]:]*" | sort -u || true)  # whole paths only
  if [[ -n $hits ]]; then
    echo "taken from the system instead of the prepared folder:"; echo "$hits"; return 1
  fi
  echo "no header or library from the system's Eigen, FFTW, doctest or Google Benchmark packages"
}

case ${1:-} in
  prepare) shift; prepare "$@" ;;
  run) shift; run_check "$@" ;;
  audit) shift; audit_dependencies "$@" ;;
  *) usage ;;
esac
