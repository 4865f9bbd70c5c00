#!/usr/bin/env bash
# scripts/compare_llamacpp.sh: bad arguments stop it with a message naming them, before anything is
# built; --summarize reads both programs' tables and the cores lines from a hand-written log (the
# ratios below are worked out by hand: 100/50 = 2.00, 20/40 = 0.50, 90/60 = 1.50, 30/40 = 0.75).
set -uo pipefail
script="$1/scripts/compare_llamacpp.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
expect() {  # expect NAME STATUS PATTERN COMMAND...: exit status and a line of its output
  local name=$1 status=$2 pattern=$3 output rc
  shift 3
  output=$("$@" 2>&1); rc=$?
  if [[ $rc -ne $status ]] || ! grep -qF -- "$pattern" <<<"$output"; then
    echo "FAIL: $name: exit $rc (wanted $status), output:"; echo "$output"; echo "(wanted a line with: $pattern)"
    failures=$((failures + 1))
  else
    echo "ok: $name"
  fi
}

expect "no arguments" 2 "LLAMA_CPP_SOURCE MODEL_DIR" "$script"
expect "missing source tree" 2 "no llama.cpp source tree at $work/none" "$script" "$work/none" "$work"
mkdir -p "$work/tree" "$work/model"
expect "not a llama.cpp tree" 2 "$work/tree is not a llama.cpp source tree" "$script" "$work/tree" "$work/model"
touch "$work/tree/CMakeLists.txt" "$work/tree/convert_hf_to_gguf.py"
expect "not a checkpoint" 2 "$work/model is not a checkpoint directory" "$script" "$work/tree" "$work/model"
touch "$work/model/config.json" "$work/model/tokenizer.model"
expect "bad THREADS" 2 "THREADS=two: must be a positive integer" env THREADS=two "$script" "$work/tree" "$work/model"
expect "missing log" 2 "--summarize: no log file $work/none.log" "$script" --summarize "$work/none.log"

cat >"$work/run.log" <<'LOG'
== model tiny
== round 1 llama.cpp
== load  21:00:00 up 1 day,  3 users,  load average: 1.50, 1.20, 1.00
| model                          |       size |     params | backend    | threads |          test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------------: | -------------------: |
| llama ?B F16                   | 256.00 MiB |   134.52 M | CPU        |       2 |         pp128 |         50.00 ± 1.00 |
| llama ?B F16                   | 256.00 MiB |   134.52 M | CPU        |       2 |          tg32 |         40.00 ± 0.50 |
== cores 1.97
== round 1 fftmat-llama
== load  21:00:10 up 1 day,  3 users,  load average: 2.25, 1.30, 1.00
GEMM kernels: OpenBLAS 0.3.21 SkylakeX (AVX-512)
| test     |              t/s      | cores |
| -------- | --------------------: | ----: |
| pp128    |    100.000 ± 2.000    |  1.98 |
| tg32     |     20.000 ± 0.100    |  1.99 |
== cores 1.50
== round 2 llama.cpp
== load  21:00:20 up 1 day,  3 users,  load average: 0.75, 1.20, 1.00
| llama ?B F16                   | 256.00 MiB |   134.52 M | CPU        |       2 |         pp128 |         60.00 ± 1.00 |
| llama ?B F16                   | 256.00 MiB |   134.52 M | CPU        |       2 |          tg32 |         40.00 ± 0.50 |
== round 2 fftmat-llama
== load  21:00:30 up 1 day,  3 users,  load average: 1.00, 1.20, 1.00
| pp128    |     90.000 ± 2.000    |  1.98 |
| tg32     |     30.000 ± 0.100    |  1.99 |
LOG
expect "summary rows" 0 "| tiny | 1 | fftmat-llama | 2.25 | 1.50 | 100.000 | 20.000 |" "$script" --summarize "$work/run.log"
expect "summary cores" 0 "| tiny | 1 | llama.cpp | 1.50 | 1.97 | 50.00 | 40.00 |" "$script" --summarize "$work/run.log"
expect "summary llama.cpp rows" 0 "| tiny | 2 | llama.cpp | 0.75 |  | 60.00 | 40.00 |" "$script" --summarize "$work/run.log"
expect "ratios round 1" 0 "| tiny | 1 | 2.00x | 0.50x |" "$script" --summarize "$work/run.log"
expect "ratios round 2" 0 "| tiny | 2 | 1.50x | 0.75x |" "$script" --summarize "$work/run.log"
echo "no table here" >"$work/empty.log"
expect "log without rows" 1 "no llama-bench or fftmat-llama bench rows" "$script" --summarize "$work/empty.log"

[[ $failures -eq 0 ]] || { echo "$failures failed"; exit 1; }
