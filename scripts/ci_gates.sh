#!/usr/bin/env bash
# The CI quality gates (docs/quality.md), run by .ci/run after scripts/test.sh:
#
#   scripts/ci_gates.sh [GATE...]     GATE: headers strict asan tsan fuzz (default: all, in that order)
#
#   headers  every public CPU header compiled on its own, as a consumer would, with
#            -Wall -Wextra -Wpedantic -Werror (g++ with OpenMP, clang++ without)
#   strict   preset "strict": every project target (tests, examples, benchmarks) with the project's
#            warnings (-Wall -Wextra -Wpedantic -Wshadow -Wconversion) as errors
#   asan     preset "asan": AddressSanitizer + UBSan (+ LeakSanitizer) build, ctest of the CPU and
#            Llama suites (labels cpu, llama; no package, no CUDA)
#   tsan     preset "tsan": ThreadSanitizer build with clang + libomp + Archer, ctest of the library
#            suite (concurrent apply, plan cache) with every parallel loop forced onto OpenMP threads
#   fuzz     preset "fuzz": libFuzzer build of the safetensors header parser, replay of the seed
#            corpus, then FUZZ_SECONDS (60) of fuzzing from a copy of it; a crash, leak or timeout
#            fails the gate and the reproducer is printed (and kept under build-fuzz/fuzz-artifacts/)
#
# Environment: JOBS (build parallelism, default 2), NICE (niceness of builds and runs, default 10),
# FUZZ_SECONDS (default 60). Every gate runs even when an earlier one failed; the script exits
# non-zero when any gate failed, after a summary with each gate's time.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

JOBS=${JOBS:-2}
NICE=${NICE:-10}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
all_gates=(headers strict asan tsan fuzz)
gates=("$@")
((${#gates[@]})) || gates=("${all_gates[@]}")

run() { nice -n "$NICE" "$@"; }
log() { printf '%s\n' "$*"; }
configure() {  # cmake --preset NAME, quiet unless it fails
  local out status
  out=$(run cmake --preset "$1" 2>&1); status=$?
  ((status == 0)) || printf '%s\n' "$out"
  return $status
}
declare -A result=() seconds=()

# ---- packages the gates need beyond scripts/install_deps.sh ------------------------------------
# libomp-dev: LLVM's OpenMP runtime and its Archer TSan tool (the tsan gate builds with clang).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  log "installing: ${missing[*]}"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ---- the gates ---------------------------------------------------------------------------------
gate_headers() {
  local tmp rc=0 h name
  tmp=$(mktemp -d)
  check_with() {  # one compiler over every header, one translation unit per header
    local cxx=$1 tag=$2 h name status=0
    local flags=(-std=c++17 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -Iinclude -isystem /usr/include/eigen3)
    for h in include/fftmat/*.hpp include/fftmat/detail/*.hpp; do
      name=${h#include/}
      [[ $name == fftmat/cuda.hpp ]] && continue        # needs nvcc (scripts/gpu_check.sh builds it)
      [[ $name == fftmat/detail/internal_header_check.hpp ]] && continue  # checked below
      # detail/ headers refuse to be included without a public header first
      # (detail/internal_header_check.hpp); each must still compile on its own once allowed.
      local allow=""
      [[ $name == fftmat/detail/* ]] && allow='#define FFTMAT_INTERNAL_HEADERS_ALLOWED\n'
      printf "$allow"'#include <%s>\nint main() { return 0; }\n' "$name" >"$tmp/$tag.cpp"
      if ! run $cxx "${flags[@]}" "$tmp/$tag.cpp" >"$tmp/$tag.err" 2>&1; then
        log "FAIL: <$name> with $cxx -Wall -Wextra -Wpedantic -Werror"; cat "$tmp/$tag.err"; status=1
      fi
    done
    printf '#include <fftmat/detail/fftw.hpp>\nint main() { return 0; }\n' >"$tmp/$tag.cpp"
    if run $cxx "${flags[@]}" "$tmp/$tag.cpp" >"$tmp/$tag.err" 2>&1 || ! grep -q "headers are internal" "$tmp/$tag.err"; then
      log "FAIL: <fftmat/detail/fftw.hpp> compiled without a public header first, or not with the expected error"
      cat "$tmp/$tag.err"; status=1
    fi
    return $status
  }
  check_with "g++ -fopenmp" gcc >"$tmp/gcc.log" 2>&1 &
  local gcc_pid=$!
  check_with "clang++" clang >"$tmp/clang.log" 2>&1 || rc=1
  wait "$gcc_pid" || rc=1
  cat "$tmp/gcc.log" "$tmp/clang.log"
  rm -rf "$tmp"
  ((rc == 0)) && log "every header compiles on its own (detail/ ones only after a public header), warning-free, with g++ and clang++"
  return $rc
}

gate_strict() {
  configure strict || return 1
  run cmake --build --preset strict -j"$JOBS"
}

gate_asan() {
  # LeakSanitizer stops the world with ptrace; where the container forbids that it aborts every
  # program at exit. Probe once: if it cannot work here, run without leak checks and say so.
  local probe
  probe=$(mktemp -d)
  printf '#include <cstdlib>\nint main() { void* volatile p = std::malloc(8); p = nullptr; return 0; }\n' >"$probe/leak.cpp"
  if g++ -fsanitize=address -g "$probe/leak.cpp" -o "$probe/leak" 2>/dev/null; then
    if ! ASAN_OPTIONS=detect_leaks=1 "$probe/leak" 2>&1 | grep -q "detected memory leaks"; then
      log "WARNING: LeakSanitizer does not work in this environment (ptrace denied?): leak checks off"
      export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    fi
  fi
  rm -rf "$probe"
  configure asan || return 1
  run cmake --build --preset asan -j"$JOBS" || return 1
  run ctest --preset asan -j"$JOBS"
}

gate_tsan() {
  ensure_packages clang libomp-dev || return 1
  local archer=/usr/lib/llvm-14/lib/libarcher.so        # the path the tsan test preset names
  [[ -f $archer ]] || { log "FAIL: $archer (LLVM 14's Archer OpenMP tool, package libomp-14-dev) is missing"; return 1; }
  configure tsan || return 1
  run cmake --build --preset tsan -j"$JOBS" || return 1
  run ctest --preset tsan -j"$JOBS"
}

gate_fuzz() {
  ensure_packages clang libclang-rt-dev || return 1
  configure fuzz || return 1
  run cmake --build --preset fuzz -j"$JOBS" || return 1
  local bin=build-fuzz/bin/fuzz_safetensors_header
  [[ -x $bin ]] || { log "FAIL: $bin was not built"; return 1; }
  log "-- replaying the seed corpus (tests/fuzz/corpus)"
  run ctest --preset fuzz || return 1

  # Fuzz from a copy: new inputs go into the copy, never into the committed corpus.
  local work=build-fuzz/fuzz-run artifacts=build-fuzz/fuzz-artifacts rc
  rm -rf "$work" && mkdir -p "$work/corpus" "$artifacts"
  cp tests/fuzz/corpus/* "$work/corpus/"
  log "-- fuzzing for ${FUZZ_SECONDS} s from a copy of the corpus ($(ls "$work/corpus" | wc -l) seeds)"
  run "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1 -artifact_prefix="$root/$artifacts/" "$work/corpus" >"$work/fuzz.log" 2>&1
  rc=$?
  if ((rc != 0)); then
    # The sanitizer / libFuzzer report with its stack trace, from its first line to the end.
    log "FAIL: the fuzzer stopped with exit code $rc; full log: $work/fuzz.log"
    sed -n '/ERROR: \|runtime error:\|==ERROR\|deadly signal\|Test unit written/,$p' "$work/fuzz.log" | head -n 300
    local f
    for f in "$artifacts"/*; do
      [[ -f $f ]] || continue
      log "== reproducer $f ($(stat -c %s "$f") bytes); replay: $bin $f"
      log "-- base64:"; base64 "$f" | head -c 65536; echo
      log "-- hexdump (first 1 KiB):"; od -A x -t x1z -N 1024 "$f"
    done
    return 1
  fi
  grep -E '^(Done|stat::)' "$work/fuzz.log"
  log "no crash, leak or timeout in ${FUZZ_SECONDS} s ($(ls "$work/corpus" | wc -l) inputs in the working corpus)"
}

# ---- driver ------------------------------------------------------------------------------------
failed=0
for gate in "${gates[@]}"; do
  if ! declare -F "gate_$gate" >/dev/null; then
    log "unknown gate '$gate' (known: ${all_gates[*]})"; exit 2
  fi
  log ""
  log "==================================================================================="
  log "== gate: $gate"
  log "==================================================================================="
  start=$SECONDS
  # real = wall time; user + sys = CPU time of the gate's processes (on a loaded machine the wall
  # time says little, (user + sys) / cores estimates the wall time on an idle one).
  TIMEFORMAT="== gate $gate: real %0R s, user %0U s, sys %0S s"
  if time "gate_$gate"; then result[$gate]=passed; else result[$gate]=FAILED; failed=1; fi
  seconds[$gate]=$((SECONDS - start))
  log "== gate $gate ${result[$gate]} in ${seconds[$gate]} s"
done

log ""
log "== quality gates summary"
for gate in "${gates[@]}"; do
  printf '   %-8s %-7s %5d s\n' "$gate" "${result[$gate]}" "${seconds[$gate]}"
done
exit $failed
