"""Shared fixtures of the chart and image tests: the chart, rendering, and what the smoke test
runs against. Tests that need a tool or a server that is missing skip saying what is missing,
except under THREDS_REQUIRE_SERVICES=1 (scripts/test), where they fail instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import chart as chart_support
from support import services

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "threds"
PRODUCTION_VALUES = CHART_DIR / "ci" / "production-values.yaml"


require = services.require


@pytest.fixture(scope="session")
def helm():
    """The helm_python module (Helm's SDK), or a skip."""
    try:
        import helm_python
    except ImportError as e:  # pragma: no cover - depends on the machine
        require(False, f"helm-python-sdk is not installed ({e}); run scripts/install/helm.sh")
    return helm_python


@pytest.fixture(scope="session")
def chart(helm):
    """The loaded chart."""
    loaded = helm.Chart.load(str(CHART_DIR))
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def production_values():
    return chart_support.load_yaml(PRODUCTION_VALUES)


@pytest.fixture(scope="session")
def render(chart):
    """render(values=None, name="demo", namespace="threds") -> chart_support.Rendered."""

    def _render(values=None, name="demo", namespace="threds", **options):
        return chart_support.render(chart, values or {}, name=name, namespace=namespace, **options)

    return _render


@pytest.fixture(scope="session")
def binaries():
    """The release `threds` and `threds-bench` executables (built by scripts/test)."""
    found = services.release_binaries(REPO)
    require(
        found is not None,
        "release binaries not found: build them with "
        "`cargo build --release --bin threds --bin threds-bench` (CARGO_TARGET_DIR is honoured)",
    )
    return found
