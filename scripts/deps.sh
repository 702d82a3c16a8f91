#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need.
# Idempotent: does nothing when everything is already installed.
# Usage: scripts/deps.sh [build|test]   (default: test, which is a superset)
set -euo pipefail
mode=${1:-test}

build_pkgs=(cmake make gcc pkg-config liblmdb-dev libuv1-dev liblz4-dev
  libhttp-parser-dev libsnappy-dev zlib1g-dev libpcre2-dev libxxhash-dev libcmocka-dev
  libzstd-dev libyaml-dev)
test_pkgs=(clang libclang-rt-14-dev lmdb-utils python3 python3-protobuf python3-snappy
  python3-jsonschema python3-requests python3-yaml prometheus prometheus-node-exporter
  victoria-metrics influxdb)

pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

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
