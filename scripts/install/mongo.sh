#!/usr/bin/env bash
# Installs the MongoDB-protocol server the MongoDB adapter's tests run against: briskdb (PyPI
# `briskdb[pymongo]`, SQLite underneath, wire version 8 = MongoDB 4.2) in a Python virtual
# environment. Idempotent: checks first, installs only what is missing. Run as root on Debian.
#
#   THREDS_VENV             where the environment goes (default /opt/threds-venv); the tests find
#                           its interpreter through THREDS_BRISKDB_PYTHON (default
#                           /opt/threds-venv/bin/python).
set -euo pipefail

BRISKDB_VERSION="0.1.0b3"
VENV="${THREDS_VENV:-/opt/threds-venv}"
PY="$VENV/bin/python"

have_briskdb() {
  [ -x "$PY" ] && "$PY" - "$BRISKDB_VERSION" <<'PYEOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import briskdb, pymongo
sys.exit(0 if version("briskdb") == sys.argv[1] else 1)
PYEOF
}

if have_briskdb; then
  echo "briskdb $BRISKDB_VERSION already installed in $VENV"
  exit 0
fi

# A Python 3 with venv and pip (Debian: python3, python3-venv).
SYSTEM_PY="$(command -v python3 || true)"
if [ -z "$SYSTEM_PY" ] || ! "$SYSTEM_PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends python3 python3-venv
  SYSTEM_PY="$(command -v python3)"
fi

if [ ! -x "$PY" ]; then
  "$SYSTEM_PY" -m venv "$VENV"
fi
"$PY" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
  "briskdb[pymongo]==$BRISKDB_VERSION"

if have_briskdb; then
  echo "briskdb $BRISKDB_VERSION installed in $VENV (interpreter: $PY)"
else
  echo "briskdb installation in $VENV failed" >&2
  exit 1
fi
