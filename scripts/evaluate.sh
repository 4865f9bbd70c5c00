#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the evaluation sweep (the study's
# table and ours) on the small trained Llama shipped in models/, then plots it.
#   scripts/evaluate.sh [extra fftmat-llama sweep options, e.g. --model DIR --out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --python
scripts/build.sh -DFFTMAT_BUILD_EXAMPLES=ON -DFFTMAT_BUILD_TESTS=OFF -DFFTMAT_BUILD_BENCHMARKS=OFF
out=""
for ((k = 1; k <= $#; ++k)); do [[ "${!k}" == "--out" ]] && { next=$((k + 1)); out="${!next}"; }; done
[[ -n "$out" ]] || { out=out/evaluation; set -- "$@" --out "$out"; }
# The model, prompt files and held-out text default to the ones shipped in the repository.
build/bin/fftmat-llama sweep "$@"
.venv/bin/python scripts/plot_evaluation.py "$out/results.json"
echo "report: $out/report.md"
