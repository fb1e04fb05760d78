"""`threds topics create` (the chart's hook runs it; test_smoke.py runs the rendered hook against
a mock cluster that has the topics): what it plans from the settings, and its errors when the
cluster cannot be reached or cannot create topics."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from support import services

TOPICS = [
    "threds.events",
    "threds.sessions",
    "threds.agent.org.wt.persistence",
    "threds.control",
    "threds.history",
    "threds.events-dlt",
    "threds.sessions-dlt",
    "threds.agent.org.wt.persistence-dlt",
    "threds.history-dlt",
]


def topics_create(binaries, *args, env=None, timeout=60):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("THREDS_")}
    environment.update(env or {})
    started = time.monotonic()
    result = subprocess.run(
        [str(binaries.threds), "topics", "create", "--config", "/nonexistent/threds.toml", *args],
        capture_output=True, text=True, env=environment, timeout=timeout,
    )
    return result, time.monotonic() - started


def test_dry_run_lists_the_deployments_topics_from_the_settings(binaries):
    env = {"THREDS_ENGINE_PARTITIONS": "6", "THREDS_SERVER_SESSION_SLOTS": "5"}
    result, _ = topics_create(binaries, "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == TOPICS
    assert lines[0] == "threds.events partitions=6"
    assert "threds.history partitions=6" in lines
    assert "threds.sessions partitions=5" in lines
    sized = ("threds.events ", "threds.history ", "threds.sessions ")
    assert all(line.endswith("partitions=1") for line in lines if not line.startswith(sized))


@pytest.mark.parametrize("factor", ["0", "-2", "three"])
def test_a_bad_replication_factor_is_refused_before_connecting(binaries, factor):
    result, _ = topics_create(binaries, "--replication-factor", factor)
    assert result.returncode == 2
    assert "is not a replication factor: -1 (the brokers' default) or a whole number from 1" in result.stderr


def test_unreachable_brokers_fail_naming_the_cluster(binaries):
    port = services.free_port()
    result, took = topics_create(binaries, env={"THREDS_BUS_KAFKA_BROKERS": f"127.0.0.1:{port}"})
    assert result.returncode == 1
    assert f"looking up topic threds.events on the Kafka cluster at 127.0.0.1:{port}" in result.stderr
    assert took < 30


def test_a_cluster_without_create_topics_gets_a_clear_error(binaries, tmp_path):
    """librdkafka's mock cluster has no CreateTopics: the request times out, and the error names
    the missing topics and what to do."""
    mock = subprocess.Popen([str(binaries.bench), "mock-kafka", "--topic", "threds.events:4"],
                            stdout=subprocess.PIPE, stderr=open(tmp_path / "mock.log", "wb"))
    try:
        bootstrap = mock.stdout.readline().decode().strip().removeprefix("bootstrap=")
        result, _ = topics_create(binaries, "--replication-factor", "1",
                                  env={"THREDS_BUS_KAFKA_BROKERS": bootstrap, "THREDS_ENGINE_PARTITIONS": "4"})
    finally:
        services.stop(mock)
    assert result.returncode == 1
    assert f"creating topics {', '.join(TOPICS[1:])} on the Kafka cluster at {bootstrap}" in result.stderr
    assert "needs them made beforehand" in result.stderr
