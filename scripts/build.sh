#!/usr/bin/env bash
# Configures and builds one flavour into build/<flavour>.
# Usage: scripts/build.sh [release|asan|fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release) opts=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_SANITIZE=ON) ;;
  fuzz) opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "unknown flavour $flavour" >&2; exit 2 ;;
esac
cmake -S . -B "build/$flavour" "${opts[@]}" >/dev/null
cmake --build "build/$flavour" -j "$(nproc)"
