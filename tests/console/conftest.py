"""Fixtures of the console's browser test: a `threds dev` on a free port and a headless Chromium
driven through its chromedriver (Debian's `chromium` and `chromium-driver`, installed by
scripts/install/console.sh). Missing tools skip the test saying what is missing, except under
THREDS_REQUIRE_SERVICES=1 (scripts/test), where they fail it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "deploy"))

from support import services  # noqa: E402  (shared with the chart tests)

# Screenshots and figures go here (CI keeps the directory as the test's artifacts).
ARTIFACTS = Path(os.environ.get("THREDS_CONSOLE_ARTIFACTS") or REPO / "target" / "console-artifacts")


require = services.require


# A pattern with `or` and `and` conditions and a transition back, beside config/patterns' own.
VOTE = {
    "name": "Vote",
    "id": "vote",
    "description": "A ballot opens; a yes ends it, a no opens it again; a quorum needs both a and b.",
    "reactions": [
        {"name": "open", "condition": {"type": "filter", "xpr": "$event.type = 'vote.open'"}},
        {
            "name": "ballot",
            "condition": {
                "type": "or",
                "operands": [
                    {"type": "filter", "xpr": "$event.type = 'vote.yes'", "transition": {"name": "quorum"}},
                    {"type": "filter", "xpr": "$event.type = 'vote.no'", "transition": {"name": "open"}},
                ],
            },
        },
        {
            "name": "quorum",
            "condition": {
                "type": "and",
                "operands": [
                    {"type": "filter", "xpr": "$event.type = 'vote.a'"},
                    {"type": "filter", "xpr": "$event.type = 'vote.b'"},
                ],
                "transition": {"name": "$terminate"},
            },
        },
    ],
}


class Dev:
    """A running `threds dev` with config/patterns and VOTE: its address, its log, and a few
    client calls."""

    def __init__(self, threds: Path, workdir: Path):
        patterns = workdir / "patterns"
        patterns.mkdir()
        for source in (REPO / "config" / "patterns").glob("*.pattern.json"):
            shutil.copy(source, patterns / source.name)
        (patterns / "vote.pattern.json").write_text(json.dumps(VOTE, indent=2))
        self.port = services.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.threds = threds
        self.log_path = workdir / "threds-dev.log"
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        # The 10,000-thred test sends as one participant as fast as the engine takes them.
        env.update(
            {
                "THREDS_SERVER_PARTICIPANT_EVENTS_PER_SEC": "1000000",
                "THREDS_SERVER_PARTICIPANT_EVENTS_BURST": "1000000",
                "THREDS_SERVER_PARTICIPANT_BYTES_PER_SEC": "1000000000",
                "THREDS_SERVER_RATE_EVENTS_PER_SEC": "1000000",
                "THREDS_SERVER_RATE_EVENTS_BURST": "1000000",
                "THREDS_SERVER_RATE_BYTES_PER_SEC": "1000000000",
                "THREDS_ENGINE_MAX_THREDS_PER_PARTICIPANT": "1000000",
                "THREDS_ENGINE_DEFAULT_MAX_INSTANCES": "1000000",
                "RUST_LOG": "info",
            }
        )
        env.pop("THREDS_JWT_SECRET", None)
        self.process = subprocess.Popen(
            [str(threds), "dev", "--listen", f"127.0.0.1:{self.port}", "--patterns", str(patterns)],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        services.wait_for("threds dev ready", self._ready, on_fail=self.tail)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise services.Gone(f"threds dev exited with {self.process.returncode}:\n{self.tail()}")
        status, _ = services.http_get(f"{self.base}/readyz")
        return status == 200

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def token(self, participant: str) -> str:
        """A development token minted by the console's route."""
        request = urllib.request.Request(
            f"{self.base}/console/api/dev/token",
            data=json.dumps({"participant": participant}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())["token"]

    def metric(self, name: str) -> float:
        """The sum of a metric's samples in /metrics."""
        _, body = services.http_get(f"{self.base}/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def close(self):
        services.stop(self.process)
        self.log.close()


@pytest.fixture(scope="module")
def dev():
    release = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release"
    threds = Path(os.environ.get("THREDS_DEPLOY_BIN_DIR") or release) / "threds"
    require(threds.is_file(), f"{threds} is missing: cargo build --release --bin threds")
    with tempfile.TemporaryDirectory() as work:
        running = Dev(threds, Path(work))
        try:
            yield running
        finally:
            running.close()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(running.log_path, ARTIFACTS / "threds-dev.log")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium at 1280×800 whose console log the test reads."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        require(False, f"selenium is not installed ({e}); run scripts/install/console.sh")
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    require(bool(chromium and driver_path), "chromium and chromedriver are not installed; run scripts/install/console.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800", "--disable-gpu", "--no-first-run", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_window_size(1280, 800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
