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
# shellcheck source=lib/python-venv.sh
source "$(dirname "$0")/lib/python-venv.sh"

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

ensure_venv
pip_install "briskdb[pymongo]==$BRISKDB_VERSION"

if have_briskdb; then
  echo "briskdb $BRISKDB_VERSION installed in $VENV (interpreter: $PY)"
else
  echo "briskdb installation in $VENV failed" >&2
  exit 1
fi
