#!/usr/bin/env bash
# Installs what reclaim needs to build and test on Debian 12, only when missing.
# Idempotent and quick when everything is present (one dpkg query, no apt-get).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost1.81-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libfmt-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: need root to install packages (try: sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# libboost1.81-dev conflicts with libboost1.74-dev / libboost-all-dev: install the
# 1.81 components by name, never the meta packages.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
