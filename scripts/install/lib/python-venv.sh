#!/usr/bin/env bash
# Sourced by scripts/install/*.sh: the Python virtual environment the test tools live in.
#
#   THREDS_VENV   where the environment goes (default /opt/threds-venv)
#
# After `source`, VENV and PY name the environment and its interpreter, and `ensure_venv`
# creates the environment when it is missing (installing Debian's python3 and python3-venv
# first when needed; run as root). Both steps do nothing when already done.

VENV="${THREDS_VENV:-/opt/threds-venv}"
PY="$VENV/bin/python"

ensure_venv() {
  if [ -x "$PY" ]; then
    return 0
  fi
  local system_py
  system_py="$(command -v python3 || true)"
  if [ -z "$system_py" ] || ! "$system_py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv
    system_py="$(command -v python3)"
  fi
  "$system_py" -m venv "$VENV"
}

# pip_install REQUIREMENT...: installs wheels only (no build step), quietly.
pip_install() {
  "$PY" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "$@"
}
