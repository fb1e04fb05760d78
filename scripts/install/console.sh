#!/usr/bin/env bash
# Installs what the console's browser test (tests/console) needs: Debian's chromium and its
# chromedriver, and the pinned Python packages of tests/console/requirements.txt (selenium) in the
# test tools' virtual environment. Idempotent: installs only what is missing. Run as root on Debian.
#
#   THREDS_VENV   where the environment goes (default /opt/threds-venv)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/../../tests/console/requirements.txt"
# shellcheck source=lib/python-venv.sh
source "$here/lib/python-venv.sh"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core
fi

ensure_venv
if ! "$PY" -c 'import selenium' >/dev/null 2>&1 \
  || [ "$("$PY" -c 'from importlib.metadata import version; print(version("selenium"))')" != "$(sed -n 's/^selenium==\([^ ]*\).*/\1/p' "$requirements")" ]; then
  pip_install -r "$requirements"
fi
echo "console: $(chromium --version 2>/dev/null | head -n 1), $(chromedriver --version | cut -d' ' -f1-2), selenium $("$PY" -c 'import selenium; print(selenium.__version__)')"
