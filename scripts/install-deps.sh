#!/usr/bin/env bash
# Installs the Debian packages earlybert needs to build, test and run, and only those missing.
# Idempotent: a second run installs nothing. Runs apt-get as root, or through sudo.
#   scripts/install-deps.sh            what building, testing and the demo need
#   scripts/install-deps.sh --corpus   and the text packages scripts/make_corpus.py reads
set -euo pipefail

packages=(
  g++ cmake ninja-build                   # toolchain
  libeigen3-dev libtbb-dev libopenblas-dev libfmt-dev  # the library's dependencies
  nlohmann-json3-dev libutf8proc-dev      # config.json and safetensors headers; Unicode tables
  libcli11-dev                            # the command-line program's argument parsing
  doctest-dev                             # the tests
  libopenmpi-dev openmpi-bin              # data-parallel training across processes (optional for the library)
  clang libclang-rt-14-dev                # the fuzz targets (libFuzzer and the sanitizers' runtimes for clang)
  python3-matplotlib                      # the demo's pictures (scripts/plot_earlybert.py); C++ never needs it
  python3-scipy python3-sklearn           # what scripts/*.py import (score_glue.py's metrics, the studies' statistics)
)
case "${1:-}" in
  "") ;;
  --corpus) packages+=(dict-gcide wordnet-base bible-kjv) ;;  # the pre-training corpus's texts
  *) echo "install-deps: unknown argument '$1', expected none or --corpus" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: every dependency is installed"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}) and neither root nor sudo to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
