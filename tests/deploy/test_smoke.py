"""The chart smoke test: render the chart, take each role's container (command, arguments,
environment, mounted ConfigMap and Secret files) exactly as rendered, start it as a local
process against librdkafka's mock Kafka cluster, a redis-server and briskdb, in the sandbox the
pod's security context asks for (support/pod.py: uid 65532, read-only filesystems but /tmp), wait
until its readiness probe passes, and run the echo flow end to end through the session node.

One host cannot give each pod its own network namespace, so each role is rendered with its own
`port` value (the only value that differs between the renders); everything else is the same."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, require
from support import dockerfile, services
from support.chart import env_map
from support.pod import LocalPod, sandbox_available

pytestmark = pytest.mark.smoke

PARTITIONS = 4
JWT_SECRET = "smoke-test-secret-not-for-production"
ROLES = ["engine", "session", "persistence"]
POD_NAMES = {
    "engine": "demo-threds-engine-0",
    "session": "demo-threds-session-6d8f9c7b5d-x7k2p",
    "persistence": "demo-threds-persistence-5b7d9f8c6-q4m9z",
}


@dataclass
class Backends:
    kafka: services.MockKafka
    redis: services.Redis
    mongo: services.Mongo


@pytest.fixture(scope="module")
def base_dir():
    """Where pods are laid out: not under /tmp, which the sandbox replaces with the emptyDir."""
    parent = "/var/tmp" if Path("/var/tmp").is_dir() and os.access("/var/tmp", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="threds-deploy-", dir=parent))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox():
    return sandbox_available()


@pytest.fixture(scope="module")
def threds_binary(binaries, base_dir, image):
    """The release binary copied to where the image has it, under the pods' directory: the
    pods' user must be able to run it wherever the build is (e.g. under a private home)."""
    target = base_dir / "image" / image.entrypoint[0].lstrip("/")
    target.parent.mkdir(parents=True)
    for directory in [base_dir / "image", *target.parents]:
        if directory.is_relative_to(base_dir):
            os.chmod(directory, 0o755)
    shutil.copy2(binaries.threds, target)
    os.chmod(target, 0o755)
    return target


@pytest.fixture(scope="module")
def image():
    return dockerfile.parse(REPO / "Dockerfile")


@pytest.fixture(scope="module")
def backends(binaries, base_dir):
    require(shutil.which("redis-server") is not None, "redis-server is not installed (scripts/install/redis.sh)")
    require(services.briskdb_python() is not None, "briskdb is not installed (scripts/install/mongo.sh)")
    logs = base_dir / "backends"
    logs.mkdir()
    started = []
    try:
        kafka = services.MockKafka(binaries.bench, PARTITIONS, logs / "mock-kafka.log")
        started.append(kafka)
        redis = services.Redis(logs / "redis.log")
        started.append(redis)
        mongo = services.Mongo(logs / "briskdb", logs / "briskdb.log")
        started.append(mongo)
        yield Backends(kafka=kafka, redis=redis, mongo=mongo)
    finally:
        for server in reversed(started):
            server.close()


def smoke_values(backends: Backends, port: int, **extra) -> dict:
    """Values pointing the chart at the local backends; `extra` merged on top (one level)."""
    values = {
        "port": port,
        "auth": {"jwtSecret": JWT_SECRET},
        "kafka": {
            "brokers": backends.kafka.bootstrap,
            # The mock cluster holds an empty fetch for the whole wait.
            "properties": {"fetch.wait.max.ms": "5"},
        },
        "redis": {"urls": [backends.redis.url]},
        "mongodb": {"uri": backends.mongo.uri},
        # briskdb accepts few sockets.
        "config": {"documents": {"mongodb": {"max_pool_size": 2}}},
        "topics": {"partitions": PARTITIONS},
        "engine": {"replicas": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


@pytest.fixture(scope="module")
def cluster(render, backends, threds_binary, base_dir, sandbox, image):
    """Every role running as its rendered pod, ready; stopped (SIGTERM) at the end."""
    pods: dict[str, LocalPod] = {}
    renders = {}
    try:
        for role in ROLES:
            rendered = render(smoke_values(backends, services.free_port()))
            renders[role] = rendered
            pod = LocalPod(
                rendered,
                rendered.workload(role)["spec"]["template"],
                pod_name=POD_NAMES[role],
                namespace="threds",
                workdir=base_dir / POD_NAMES[role],
                image=image,
                binary=threds_binary,
                sandbox=sandbox,
            )
            pod.keep_running()
            pods[role] = pod
        for role, pod in pods.items():
            startup = pod.container["startupProbe"]
            budget = startup["periodSeconds"] * startup["failureThreshold"]
            services.wait_for(
                f"{role}: readiness probe {pod.probe_url('readinessProbe')}",
                lambda pod=pod: ready(pod),
                timeout=min(budget, 120),
                interval=0.2,
                on_fail=lambda pod=pod: pod.log(),
            )
        yield pods, renders
    finally:
        for pod in pods.values():
            pod.stop(pod.spec.get("terminationGracePeriodSeconds", 30))


def ready(pod: LocalPod) -> bool:
    if pod.crash_looping():
        raise services.Gone(f"{pod.pod_name} keeps exiting ({pod.restarts} restarts):\n{pod.log()}")
    status, _ = services.http_get(pod.probe_url("readinessProbe"))
    return status == 200


def token(participant: str) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": participant, "iat": now, "exp": now + 600}, JWT_SECRET, algorithm="HS256")


def session_url(pods) -> str:
    pod = pods["session"]
    return f"127.0.0.1:{pod.port('http')}"


def echo_event(content: str) -> dict:
    return {
        "id": f"smoke-{uuid.uuid4()}",
        "type": "org.wt.echo",
        "data": {"content": {"values": {"echoTo": ["bob"], "echoTitle": "hello", "echoContent": content}}},
    }


def receive_echo(ws, content: str, timeout: float) -> dict | None:
    """The first message frame for bob whose echo is `content`, or None within `timeout`."""
    import websocket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            frame = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        message = frame.get("message")
        if message and message["event"]["data"]["content"]["values"].get("echo") == content:
            return message
    return None


def deliver(send, bob, what: str, timeout: float = 60.0) -> dict:
    """Sends echo events with `send(event)` until bob receives one (bob's session may still be
    registering when the first goes out); the message bob got."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        content = f"{what} {attempt} {uuid.uuid4()}"
        send(echo_event(content))
        message = receive_echo(bob, content, timeout=5.0)
        if message:
            return message
    raise AssertionError(f"bob received no echo of {what} in {timeout:.0f} s ({attempt} events sent)")


def connect(pods, participant: str):
    import websocket

    return websocket.create_connection(
        f"ws://{session_url(pods)}/ws", header=[f"Authorization: Bearer {token(participant)}"], timeout=10
    )


def test_every_role_becomes_ready_as_rendered(cluster, sandbox):
    pods, _ = cluster
    for role, pod in pods.items():
        status, body = services.http_get(pod.probe_url("livenessProbe"))
        assert status == 200, f"{role}: /livez {status} {body!r}"
        status, body = services.http_get(pod.probe_url("readinessProbe"))
        assert status == 200 and json.loads(body)["status"] == "ready", f"{role}: {body!r}"
    if not sandbox:
        pytest.skip("ran as the current user without the read-only sandbox (needs root, unshare and setpriv)")


def test_an_event_sent_over_websocket_reaches_bob(cluster):
    pods, _ = cluster
    bob, alice = connect(pods, "bob"), connect(pods, "alice")
    try:
        acks = []

        def send(event):
            alice.send(json.dumps({"event": event}))
            frame = json.loads(alice.recv())
            acks.append(frame)
            assert frame == {"ack": {"id": event["id"]}}, frame

        message = deliver(send, bob, "over websocket")
        assert message["to"] == ["bob"]
        assert message["event"]["data"]["title"] == "hello 1"
        assert message["event"]["source"]["id"] != "bob"
    finally:
        bob.close()
        alice.close()


def test_an_event_posted_to_events_reaches_bob(cluster):
    pods, _ = cluster
    bob = connect(pods, "bob")
    try:

        def send(event):
            request = urllib.request.Request(
                f"http://{session_url(pods)}/events",
                data=json.dumps(event).encode(),
                headers={"Authorization": f"Bearer {token('alice')}", "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 202
                assert json.loads(response.read()) == {"ack": {"id": event["id"]}}

        message = deliver(send, bob, "posted")
        assert message["event"]["data"]["title"] == "hello 1"
    finally:
        bob.close()


def test_a_token_signed_with_another_secret_is_refused(cluster):
    import jwt
    import websocket

    pods, _ = cluster
    now = int(time.time())
    forged = jwt.encode({"sub": "bob", "iat": now, "exp": now + 60}, "x" * 32 + " another secret", algorithm="HS256")
    ws = websocket.create_connection(f"ws://{session_url(pods)}/ws", header=[f"Authorization: Bearer {forged}"], timeout=10)
    try:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE, opcode
        assert int.from_bytes(frame.data[:2], "big") == 4401, frame.data
    finally:
        ws.close()


def test_engine_joined_under_its_pod_name_and_holds_every_partition(cluster):
    pods, _ = cluster
    engine = pods["engine"]
    _, metrics = services.http_get(f"http://127.0.0.1:{engine.port('http')}/metrics")
    text = metrics.decode()
    leases = re.search(r"^threds_lease_grants_total (\d+)", text, re.M)
    assert leases and int(leases.group(1)) >= PARTITIONS, "the engine leased its partitions"
    log = engine.log_path.read_text(errors="replace")
    assert POD_NAMES["engine"] in log, "the engine's node name (THREDS_NODE_NAME) is its pod name"


def metric_names(text: str) -> set[str]:
    """Sample names every family of an OpenMetrics text can have."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if not m:
            continue
        name, kind = m.groups()
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def declared_metrics() -> set[str]:
    """Sample names of the families runtime/src/metrics.rs registers (a family with no
    sample yet, e.g. dead letters in a run without any, is left out of /metrics)."""
    source = (REPO / "runtime" / "src" / "metrics.rs").read_text()
    fields = dict(re.findall(r"pub (\w+): (.+),$", source, re.M))
    names = set()
    pattern = r'register(?:_with_unit)?\(\s*"(\w+)",\s*"[^"]*",\s*(Unit::\w+,\s*)?m\.(\w+)\.clone\(\)'
    for name, unit, field in re.findall(pattern, source):
        full = f"threds_{name}" + ("_seconds" if "Seconds" in unit else "")
        kind = fields.get(field, "")
        kind = "histogram" if "Histogram" in kind else "counter" if "Counter" in kind else "gauge"
        names |= metric_names(f"# TYPE {full} {kind}")
    return names


def test_alerts_and_dashboard_use_metrics_the_processes_export(cluster, render, production_values):
    pods, _ = cluster
    exported = set()
    for pod in pods.values():
        status, body = services.http_get(f"http://127.0.0.1:{pod.port('http')}/metrics")
        assert status == 200
        exported |= metric_names(body.decode())
    declared = declared_metrics()
    assert "threds_dead_letters_total" in declared and "threds_step_duration_seconds_bucket" in declared
    assert exported & declared, "the processes export the declared families"
    rules = render(production_values).of_kind("PrometheusRule")[0]["spec"]["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"\b(threds_[a-z_]+)", rule["expr"])}
    dashboard = (REPO / "deploy" / "grafana" / "threds-dashboard.json").read_text()
    used |= set(re.findall(r"\b(threds_[a-z_]+)", dashboard))
    assert used, "no threds_* metric used"
    missing = used - exported - declared
    assert not missing, f"alerts or dashboard use metrics no process exports: {sorted(missing)}"


def test_processes_stop_within_their_grace_period_on_sigterm(cluster):
    pods, _ = cluster
    for role in ("session", "persistence", "engine"):
        pod = pods[role]
        grace = pod.spec["terminationGracePeriodSeconds"]
        code = pod.stop(grace)
        assert code is not None, f"{role} did not stop within terminationGracePeriodSeconds={grace}:\n{pod.log()}"
        assert code == 0, f"{role} exited {code}:\n{pod.log()}"


def hook_pod(rendered, base_dir, name, image, threds_binary, sandbox) -> LocalPod:
    job = next(h for h in rendered.hooks() if h["kind"] == "Job")
    return LocalPod(
        rendered,
        job["spec"]["template"],
        pod_name=f"{job['metadata']['name']}-{name}",
        namespace="threds",
        workdir=base_dir / f"hook-{name}",
        image=image,
        binary=threds_binary,
        sandbox=sandbox,
    )


def test_topics_hook_finds_the_deployments_topics(render, backends, base_dir, image, threds_binary, sandbox):
    rendered = render(smoke_values(backends, services.free_port(), topics={"create": {"enabled": True}, "replicationFactor": 1}))
    result = hook_pod(rendered, base_dir, "exists", image, threds_binary, sandbox).run(timeout=60)
    assert result.returncode == 0, result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("threds.")]
    assert f"threds.events partitions={PARTITIONS} exists" in lines
    assert f"threds.history partitions={PARTITIONS} exists" in lines
    assert len(lines) == 9 and all(line.endswith(" exists") for line in lines), result.stdout


def test_topics_hook_refuses_a_partition_count_the_topic_does_not_have(render, backends, base_dir, image, threds_binary, sandbox):
    values = smoke_values(backends, services.free_port(), topics={"create": {"enabled": True}, "partitions": PARTITIONS + 2})
    rendered = render(values)
    assert env_map(next(h for h in rendered.hooks() if h["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0])[
        "THREDS_ENGINE_PARTITIONS"]["value"] == str(PARTITIONS + 2)
    result = hook_pod(rendered, base_dir, "mismatch", image, threds_binary, sandbox).run(timeout=60)
    assert result.returncode != 0
    assert f"topic threds.events exists with {PARTITIONS} partition(s)" in result.stdout
    assert f"call for {PARTITIONS + 2}" in result.stdout


def test_sandbox_is_non_root_and_read_only_but_tmp(render, base_dir, image, threds_binary, sandbox):
    """What the smoke test's pods ran in: checked from inside, with the engine's pod spec."""
    require(sandbox, "the read-only, non-root sandbox needs root, unshare and setpriv")
    rendered = render({"auth": {"jwtSecret": JWT_SECRET}})
    pod = LocalPod(rendered, rendered.workload("engine")["spec"]["template"], pod_name="sandbox-check",
                   namespace="threds", workdir=base_dir / "sandbox-check", image=image,
                   binary=threds_binary, sandbox=True)
    script = (
        "id -u; id -g; touch /tmp/writable && echo tmp-writable; "
        f"touch {threds_binary.parent}/x 2>/dev/null || echo binary-dir-read-only; "
        f"touch {pod.dir}/x 2>/dev/null || echo pod-dir-read-only; "
        "touch /var/tmp/x 2>/dev/null || echo var-tmp-read-only; "
        "grep CapEff /proc/self/status"
    )
    argv = pod.sandboxed_argv()
    argv = argv[: argv.index("pod") + 1] + ["/bin/sh", "-c", script]
    import subprocess

    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = out.stdout.split()
    assert lines[:2] == ["65532", "65532"], out.stdout + out.stderr
    for expected in ("tmp-writable", "binary-dir-read-only", "pod-dir-read-only", "var-tmp-read-only"):
        assert expected in lines, out.stdout + out.stderr
    assert out.stdout.strip().endswith("0000000000000000"), "no effective capabilities"
