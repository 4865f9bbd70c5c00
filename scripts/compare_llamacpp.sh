#!/usr/bin/env bash
# fftmat-llama and llama.cpp side by side on the same weights (docs/llama.md, "Against llama.cpp").
#
#   scripts/compare_llamacpp.sh LLAMA_CPP_SOURCE MODEL_DIR [MODEL_DIR ...]
#   scripts/compare_llamacpp.sh --summarize LOG
#
# LLAMA_CPP_SOURCE is a llama.cpp source tree of your own (nothing of it is part of fftmat); it is
# built into build/llama.cpp (llama-bench only, Release, this CPU's ISA). Each MODEL_DIR is a
# Hugging Face Llama checkpoint with a SentencePiece tokenizer.model (tools/make_llama7b_shaped.py
# makes random ones of any shape); llama.cpp's own convert_hf_to_gguf.py turns it into GGUF F16 in
# build/compare-llamacpp/, with its Python packages (scripts/requirements-llamacpp.txt) in .venv.
# Then `llama-bench` and `fftmat-llama bench` run back to back, alternating, ROUNDS times, with the
# same threads and lengths, each run preceded by the load average (`uptime`): on a shared machine
# the alternation spreads other work over both programs, and the load tells when it was heavy.
# Needs build/bin/fftmat-llama (scripts/build.sh with -DFFTMAT_BUILD_EXAMPLES=ON).
#
# The log goes to build/compare-llamacpp/compare-DATE.log; its summary (tokens/s of each run and
# fftmat-llama / llama.cpp per round) is printed at the end. --summarize prints that of a saved log.
#
# Environment: THREADS (2), PP (128), TG (32), REPETITIONS (3), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }
fail() { echo "compare_llamacpp.sh: $*" >&2; exit 2; }

# The summary of a log: one line per run (model, round, program, load, cores, pp and tg tokens/s), then
# the ratio fftmat-llama / llama.cpp of each round. Reads the markdown rows both programs print:
# | ... | ppN | mean ± sd | ...
summarize() {
  awk -F'|' '
    /^== model / { model = $0; sub(/^== model /, "", model); next }
    /^== round / { split($0, w, " "); round = w[3]; program = w[4]; next }
    /^== load / { load = $0; sub(/^.*load average: /, "", load); sub(/,.*/, "", load); next }
    /^== cores / { cores[model SUBSEP round SUBSEP program] = $0; sub(/^== cores /, "", cores[model SUBSEP round SUBSEP program]); next }
    /^\|/ {
      for (i = 2; i < NF; ++i) {
        cell = $i; gsub(/ /, "", cell)
        if (cell ~ /^(pp|tg)[0-9]+$/) {
          rate = $(i + 1); sub(/^ */, "", rate); sub(/ .*/, "", rate)
          kind = substr(cell, 1, 2); test[kind] = cell
          key = model SUBSEP round SUBSEP program SUBSEP kind
          tps[key] = rate; loads[model SUBSEP round SUBSEP program] = load
          if (!((model, round) in seen)) { seen[model, round] = 1; order[++n] = model SUBSEP round }
        }
      }
    }
    END {
      if (n == 0) { print "no llama-bench or fftmat-llama bench rows in the log" > "/dev/stderr"; exit 1 }
      printf "| model | round | program | load (1 min) | cores | %s t/s | %s t/s |\n|---|---|---|---|---:|---:|---:|\n", test["pp"], test["tg"]
      for (k = 1; k <= n; ++k) {
        split(order[k], mr, SUBSEP)
        for (p = 1; p <= 2; ++p) {
          program = p == 1 ? "llama.cpp" : "fftmat-llama"
          printf "| %s | %s | %s | %s | %s | %s | %s |\n", mr[1], mr[2], program, loads[mr[1], mr[2], program],
                 cores[mr[1], mr[2], program], tps[mr[1], mr[2], program, "pp"], tps[mr[1], mr[2], program, "tg"]
        }
      }
      printf "\n| model | round | fftmat-llama / llama.cpp, %s | %s |\n|---|---|---:|---:|\n", test["pp"], test["tg"]
      for (k = 1; k <= n; ++k) {
        split(order[k], mr, SUBSEP)
        line = "| " mr[1] " | " mr[2] " |"
        for (q = 1; q <= 2; ++q) {
          kind = q == 1 ? "pp" : "tg"
          ours = tps[mr[1], mr[2], "fftmat-llama", kind]; theirs = tps[mr[1], mr[2], "llama.cpp", kind]
          line = line (ours != "" && theirs > 0 ? sprintf(" %.2fx |", ours / theirs) : " - |")
        }
        print line
      }
    }' "$1"
}

[[ $# -ge 1 ]] || usage
if [[ $1 == --summarize ]]; then
  [[ $# -eq 2 ]] || usage
  [[ -f $2 ]] || fail "--summarize: no log file $2"
  summarize "$2"
  exit
fi
[[ $# -ge 2 ]] || usage
source_tree=$(realpath -e "$1" 2>/dev/null) || fail "no llama.cpp source tree at $1"
shift
[[ -f $source_tree/CMakeLists.txt && -f $source_tree/convert_hf_to_gguf.py ]] ||
  fail "$source_tree is not a llama.cpp source tree (it needs CMakeLists.txt and convert_hf_to_gguf.py)"
for model in "$@"; do
  [[ -f $model/config.json && -f $model/tokenizer.model ]] ||
    fail "$model is not a checkpoint directory with config.json and tokenizer.model"
done
threads=${THREADS:-2} pp=${PP:-128} tg=${TG:-32} repetitions=${REPETITIONS:-3} rounds=${ROUNDS:-2}
for setting in THREADS=$threads PP=$pp TG=$tg REPETITIONS=$repetitions ROUNDS=$rounds; do
  [[ ${setting#*=} =~ ^[1-9][0-9]*$ ]] || fail "$setting: must be a positive integer"
done
fftmat_llama=build/bin/fftmat-llama
[[ -x $fftmat_llama ]] || fail "$fftmat_llama is missing: build it with scripts/build.sh -DFFTMAT_BUILD_EXAMPLES=ON"

jobs=$(nproc 2>/dev/null || echo 2)
echo "== building llama-bench from $source_tree into build/llama.cpp" >&2
cmake -S "$source_tree" -B build/llama.cpp -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build build/llama.cpp -j"$jobs" --target llama-bench >/dev/null
llama_bench=build/llama.cpp/bin/llama-bench
[[ -x $llama_bench ]] || fail "the llama.cpp build made no $llama_bench"

[[ -x .venv/bin/python ]] || python3 -m venv .venv || fail "cannot make .venv: python3 -m venv failed (Debian: scripts/install_deps.sh --python)"
.venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements-llamacpp.txt

work=build/compare-llamacpp
mkdir -p "$work"
log=$work/compare-$(date -u +%Y%m%dT%H%M%SZ).log
{
  echo "== date $(date -u '+%Y-%m-%d %H:%M UTC')"
  cpuinfo() { sed -n "s/^$1[[:space:]]*: //p" /proc/cpuinfo | head -1; }
  echo "== cpu $(cpuinfo 'model name'), family $(cpuinfo 'cpu family') model $(cpuinfo model)," \
       "$(nproc) cores: $(grep -ow 'avx2\|fma\|f16c\|avx512f\|avx512_bf16\|avx512_fp16\|amx_tile' /proc/cpuinfo |
                            sort -u | tr '\n' ' ')"
  echo "== llama.cpp $source_tree $(git -C "$source_tree" describe --always --dirty 2>/dev/null || echo '(not a git checkout)')"
  echo "== fftmat $(git describe --always --dirty 2>/dev/null || echo '(not a git checkout)')"
  echo "== threads $threads, pp $pp, tg $tg, repetitions $repetitions, rounds $rounds"
} | tee "$log"

# run ROUND PROGRAM COMMAND...: one benchmark run into the log, after the load average and followed by
# the cores it occupied on average (CPU time / wall time of the whole run, warm-up included): where
# other work takes the machine, that shows how much of it each program had.
run() {
  local round=$1 program=$2 times
  shift 2
  { echo "== round $round $program"; echo "== load $(uptime)"; } | tee -a "$log"
  { times=$( { TIMEFORMAT="%U %S %R"; time "$@" 2>&1 | tee -a "$log" >&3; } 2>&1 ); } 3>&1
  awk -v t="$times" 'BEGIN { split(t, x, " "); printf "== cores %.2f\n", (x[1] + x[2]) / x[3] }' | tee -a "$log"
}

for model in "$@"; do
  name=$(basename "$(realpath "$model")")
  gguf=$work/$name-f16.gguf
  if [[ ! -f $gguf || -n $(find "$model" -newer "$gguf" -print -quit) ]]; then  # none, or older than the checkpoint
    echo "== converting $model to $gguf with llama.cpp's convert_hf_to_gguf.py" >&2
    partial=$(mktemp "$work/$name.XXXXXX.gguf")
    .venv/bin/python "$source_tree/convert_hf_to_gguf.py" "$model" --outtype f16 --outfile "$partial" >&2 ||
      { rm -f "$partial"; fail "converting $model failed"; }
    mv "$partial" "$gguf"
  fi
  echo "== model $name" | tee -a "$log"
  for ((round = 1; round <= rounds; ++round)); do
    run "$round" llama.cpp "$llama_bench" -m "$gguf" -t "$threads" -p "$pp" -n "$tg" -r "$repetitions" -o md
    run "$round" fftmat-llama "$fftmat_llama" bench --model "$model" --threads "$threads" -p "$pp" -n "$tg" \
      -r "$repetitions" --no-bandwidth
  done
done
echo
echo "log: $log"
summarize "$log"
