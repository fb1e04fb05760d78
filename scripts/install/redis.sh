#!/usr/bin/env bash
# Installs redis-server (used by the Redis store adapter's tests) on a fresh Debian machine, as root.
# Idempotent: does nothing when redis-server is already on the PATH.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server present: $(redis-server --version)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends redis-server
# The package starts a system instance on port 6379; the tests spawn their own servers on free
# ports and do not need it.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
service redis-server stop >/dev/null 2>&1 || true
echo "redis-server installed: $(redis-server --version)"
