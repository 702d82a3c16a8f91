#!/usr/bin/env bash
# Installs what is missing, builds Release, and runs tsdbd in the foreground on the
# embedded default data directory (./data), listening on 127.0.0.1:9201.
# Extra arguments go to tsdbd (e.g. scripts/run.sh --listen :9201 --retention 90d).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh release
exec build/release/tsdbd --data-dir ./data --listen 127.0.0.1:9201 "$@"
