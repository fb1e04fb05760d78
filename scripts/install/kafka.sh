#!/usr/bin/env bash
# Installs what the Kafka bus adapter needs to build on a fresh Debian machine (run as root).
#
# The adapter links librdkafka statically: the `rdkafka` crate builds it from source, so no Kafka
# server or system librdkafka is needed (Debian's is too old to link against dynamically). Tests
# run librdkafka's mock cluster in process (`threds-bench mock-kafka` for other processes).
# Idempotent: installs only the packages that are missing.
set -euo pipefail

packages=(build-essential cmake pkg-config libssl-dev libsasl2-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "kafka: build dependencies already installed"
  exit 0
fi

echo "kafka: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
