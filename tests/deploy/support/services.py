"""The servers the smoke test runs the chart's containers against: librdkafka's mock Kafka cluster
(`threds-bench mock-kafka`), a redis-server and briskdb (a MongoDB-protocol server), each on a
loopback port, each stopped at the end. Waits are on conditions (a line printed, a ping
answered), polled until a deadline."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 60.0


@dataclass
class Binaries:
    threds: Path
    bench: Path


def release_binaries(repo: Path) -> Binaries | None:
    """The release `threds` and `threds-bench`: in THREDS_DEPLOY_BIN_DIR when set (a directory
    holding both), else in CARGO_TARGET_DIR's (else the repository's target/) release/."""
    chosen = os.environ.get("THREDS_DEPLOY_BIN_DIR")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or repo / "target")
    release = Path(chosen) if chosen else target / "release"
    threds, bench = release / "threds", release / "threds-bench"
    if threds.is_file() and bench.is_file():
        return Binaries(threds=threds, bench=bench)
    return None


def require(condition: bool, why: str) -> None:
    """Skips the test when `condition` is false, or fails it when services are required
    (THREDS_REQUIRE_SERVICES=1, as scripts/test sets)."""
    import pytest

    if condition:
        return
    if os.environ.get("THREDS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{why} (THREDS_REQUIRE_SERVICES=1: missing tools and services fail)")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gone(AssertionError):
    """Raised by a check when what it waits for can no longer happen (a process exited)."""


def wait_for(what: str, check, timeout: float = START_TIMEOUT, interval: float = 0.1, on_fail=None):
    """Polls `check()` until it returns something truthy; fails after `timeout` seconds, or at
    once when the check raises Gone."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Gone as e:
            raise AssertionError(f"{what}: {e}") from None
        except Exception as e:  # noqa: BLE001 - reported if it never succeeds
            last = e
        time.sleep(interval)
    detail = f" (last error: {last})" if last else ""
    extra = f"\n{on_fail()}" if on_fail else ""
    raise AssertionError(f"{what} not within {timeout:.0f} s{detail}{extra}")


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """GET `url`: (status, body); HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def stop(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after `timeout`; the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class MockKafka:
    """`threds-bench mock-kafka --deployment N`: every topic of a deployment with N partitions."""

    def __init__(self, bench: Path, partitions: int, log: Path):
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [str(bench), "mock-kafka", "--deployment", str(partitions)],
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("bootstrap="):
            stop(self.process)
            raise RuntimeError(f"mock-kafka printed {line!r}, not bootstrap=...; see {log}")
        self.bootstrap = line.removeprefix("bootstrap=")

    def close(self):
        stop(self.process)
        self.log.close()


class Redis:
    """A redis-server on a free loopback port, without persistence."""

    def __init__(self, log: Path):
        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server is not on the PATH (scripts/install/redis.sh)")
        self.port = free_port()
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for("redis-server answering PING", self._ping, on_fail=lambda: log.read_text())
        self.url = f"redis://127.0.0.1:{self.port}"

    def _ping(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def close(self):
        stop(self.process)
        self.log.close()


# Serves a briskdb database over the MongoDB protocol on a port the system picks, prints the
# address, and runs until its standard input closes (so it ends with the test process too).
BRISKDB_LAUNCHER = r"""
import sys
import briskdb
with briskdb.open(sys.argv[1], shards=2, documents=True) as db:
    with db.serve(mongo="127.0.0.1:0", admin=None) as server:
        print(server.mongo_address, flush=True)
        sys.stdin.read()
"""


def briskdb_python() -> str | None:
    """The interpreter with briskdb: THREDS_BRISKDB_PYTHON, the venv's, else this one."""
    for candidate in (os.environ.get("THREDS_BRISKDB_PYTHON"), "/opt/threds-venv/bin/python", sys.executable):
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run([candidate, "-c", "import briskdb, pymongo"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    return None


class Mongo:
    """briskdb (scripts/install/mongo.sh) on a loopback port."""

    def __init__(self, data: Path, log: Path):
        python = briskdb_python()
        if python is None:
            raise FileNotFoundError("briskdb is not installed (scripts/install/mongo.sh)")
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [python, "-c", BRISKDB_LAUNCHER, str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        address = self.process.stdout.readline().decode().strip()
        if not address:
            stop(self.process)
            raise RuntimeError(f"briskdb did not print its address; see {log}")
        self.address = address
        self.uri = f"mongodb://{address}/?directConnection=true"
        self.python = python
        wait_for("briskdb answering ping", self._ping)

    def _ping(self) -> bool:
        check = (
            "import sys, pymongo; c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000);"
            " c.admin.command('ping')"
        )
        return subprocess.run([self.python, "-c", check, self.uri], capture_output=True).returncode == 0

    def close(self):
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            stop(self.process)
        self.log.close()
