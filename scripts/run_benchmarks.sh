#!/usr/bin/env bash
# Runs the CPU microbenchmarks (benchmarks/cpu) and writes Google Benchmark JSON.
#
#   scripts/run_benchmarks.sh                 default filter (Llama-2-7B shapes, stages of 11008x4096,
#                                             projection and calibration at b=64): a few minutes
#   scripts/run_benchmarks.sh --full          everything, incl. the square scaling series 256..16384
#   scripts/run_benchmarks.sh --filter REGEX  any Google Benchmark filter (names: benchmarks/cpu/bench_cpu.cpp)
#   scripts/run_benchmarks.sh --out PATH      JSON destination (default docs/data/bench_cpu.json,
#                                             docs/data/bench_cpu_full.json with --full)
#   scripts/run_benchmarks.sh --reps N        repetitions per benchmark (default 3; medians are reported)
#   Any further arguments go to the benchmark binary (e.g. --benchmark_min_time=0.5).
#
# Environment: BUILD_DIR (default build-bench), OMP_NUM_THREADS (default: all cores),
# FFTMAT_BENCH_ROTATE_MB (default: twice the last-level cache, at least 64: weights/inputs rotated
# over copies this many MiB large in total), FFTMAT_KERNELS (portable, avx2, avx512: force a kernel set).
# The JSON is written to a temporary file and renamed into place, so an interrupted run never
# leaves a truncated file. Then: python3 scripts/plot_benchmarks.py [JSON].
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
default_filter='^(machine/|apply/(bc|eigen|blas)/|apply/(bcref|bcbf16)/[0-9x]+/b64/|stage/(rfft|product|irfft)/11008x4096/b(16|64|256)/|stage/product_bf16/11008x4096/b64/|project/frobenius/11008x4096/b64$|calib/[a-z]+/11008x4096/b64(/|$))'
filter="$default_filter"
out=""
reps=3
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --full) filter='.*'; [[ -z "$out" ]] && out="$root/docs/data/bench_cpu_full.json"; shift ;;
    --filter) filter="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
out="${out:-$root/docs/data/bench_cpu.json}"

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFFTMAT_CUDA=OFF -DFFTMAT_BUILD_EXAMPLES=OFF \
        -DFFTMAT_BUILD_TESTS=OFF
fi
cmake --build "$build" --target fftmat_bench_cpu -j"${JOBS:-2}"
bin="$build/bin/fftmat_bench_cpu"

mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$(dirname "$out")/.bench.XXXXXX.json")"
trap 'rm -f "$tmp"' EXIT
"$bin" --benchmark_filter="$filter" \
       --benchmark_repetitions="$reps" \
       --benchmark_enable_random_interleaving=true \
       --benchmark_report_aggregates_only=true \
       --benchmark_out="$tmp" --benchmark_out_format=json \
       "${extra[@]}"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "wrote $out"
