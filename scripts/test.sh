#!/usr/bin/env bash
# Installs what is missing, builds Release and ASan+UBSan, and runs every test in both.
# Integration and e2e tests run once, against the Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/build.sh release
scripts/build.sh asan
jobs=$(nproc)
echo "== ASan+UBSan: unit tests and fuzz corpora"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan -L 'unit|fuzz' -j "$jobs" --output-on-failure --timeout 900
echo "== Release: all tests"
ctest --test-dir build/release -j "$jobs" --output-on-failure --timeout 900
