#!/usr/bin/env bash
# Installs what fftmat needs on Debian 12 (only what is missing), then returns.
#   scripts/install_deps.sh           build + test dependencies (Debian packages)
#   scripts/install_deps.sh --python  also a project virtualenv (.venv) with the plotting and tokenizer packages
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config git
          libeigen3-dev libfftw3-dev libopenblas-dev doctest-dev libbenchmark-dev
          libsentencepiece-dev nlohmann-json3-dev libcli11-dev libxxhash-dev
          clang libclang-rt-dev)
want_python=0
[[ "${1:-}" == "--python" ]] && { want_python=1; packages+=(python3 python3-venv python3-pip); }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ((want_python)); then
  if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements-plots.txt \
      -r scripts/requirements-tokenize.txt
fi
