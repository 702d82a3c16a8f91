#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need.
# Idempotent: does nothing when everything is already installed.
# Usage: scripts/deps.sh [build|test]   (default: test, which is a superset)
set -euo pipefail
mode=${1:-test}

build_pkgs=(cmake make gcc pkg-config liblmdb-dev libuv1-dev liblz4-dev
  libhttp-parser-dev libsnappy-dev zlib1g-dev libpcre2-dev libxxhash-dev libcmocka-dev
  libzstd-dev libyaml-dev libcurl4-openssl-dev libssl-dev libcrypt-dev
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler)
test_pkgs=(clang libclang-rt-14-dev lmdb-utils python3 python3-protobuf python3-snappy
  python3-jsonschema python3-requests python3-yaml prometheus prometheus-node-exporter
  victoria-metrics influxdb openssl systemd chromium python3-grpcio python3-grpc-tools)

pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")
# Node.js and npm for the S3-compatible test server (tests/s3, from the npm registry),
# unless the machine has them already (from Debian or elsewhere).
if [ "$mode" = test ] && ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The npm packages the tests use (s3rver), pinned by tests/s3/package-lock.json.
npm_deps() {
  [ "$mode" = test ] || return 0
  [ -x tests/s3/node_modules/.bin/s3rver ] && return 0
  (cd tests/s3 && npm ci --no-audit --no-fund --loglevel=error >&2)
}
if [ ${#missing[@]} -eq 0 ]; then
  cd "$(dirname "$0")/.." && npm_deps
  exit 0
fi

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
# The peers' packages ship services; the tests start their own instances on loopback,
# so keep the packaged ones from starting (policy-rc.d is the Debian way to say so).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
cd "$(dirname "$0")/.." && npm_deps
