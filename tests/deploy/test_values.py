"""Values that would make a broken install fail at `helm install` (and `helm template`), with a
message naming the value and what is wrong: values.schema.json for types, ranges and unknown keys;
the chart's own checks for values that contradict each other."""

from __future__ import annotations

import pytest

BAD_VALUES = [
    pytest.param({"engine": {"replicas": 0}}, ["/engine/replicas", "minimum"], id="no-engines"),
    pytest.param({"engine": {"replica": 2}}, ["/engine", "'replica' not allowed"], id="misspelt-key"),
    pytest.param({"enigne": {"replicas": 2}}, ["'enigne' not allowed"], id="misspelt-section"),
    pytest.param({"session": {"replicas": "two"}}, ["/session/replicas", "want integer"], id="replicas-not-a-number"),
    pytest.param({"topics": {"partitions": 0}}, ["/topics/partitions", "minimum"], id="no-partitions"),
    pytest.param({"topics": {"replicationFactor": 0}}, ["topics.replicationFactor is 0"], id="replication-zero"),
    pytest.param({"topics": {"replicationFactor": -2}}, ["/topics/replicationFactor", "minimum"], id="replication-negative"),
    pytest.param({"engine": {"replicas": 6}}, ["engine.replicas (6) is more than topics.partitions (4)"], id="more-engines-than-partitions"),
    pytest.param({"engine": {"keda": {"enabled": True, "minReplicas": 5}}}, ["engine.keda.minReplicas (5) is more than topics.partitions (4)"], id="keda-min-over-partitions"),
    pytest.param({"engine": {"keda": {"enabled": True, "minReplicas": 0}}}, ["/engine/keda/minReplicas", "minimum"], id="keda-scale-to-zero"),
    pytest.param({"engine": {"keda": {"enabled": True, "minReplicas": 3, "maxReplicas": 2}}}, ["engine.keda.minReplicas (3) is more than engine.keda.maxReplicas (2)"], id="keda-min-over-max"),
    pytest.param({"session": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}, ["session.autoscaling.minReplicas (5)"], id="hpa-min-over-max"),
    pytest.param({"session": {"replicas": 40}}, ["session.replicas (40) is more than config.server.session_slots (32)"], id="more-sessions-than-slots"),
    pytest.param({"session": {"autoscaling": {"enabled": True, "maxReplicas": 9}}, "config": {"server": {"session_slots": 8}}}, ["session.autoscaling.maxReplicas (9) is more than config.server.session_slots (8)"], id="hpa-max-over-slots"),
    pytest.param({"kafka": {"brokers": "kafka"}}, ["/kafka/brokers", "does not match pattern"], id="brokers-without-port"),
    pytest.param({"kafka": {"properties": {"linger.ms": 5}}}, ["/kafka/properties/linger.ms", "want string"], id="kafka-property-not-a-string"),
    pytest.param({"kafka": {"sasl": {"enabled": True}}}, ["kafka.sasl.enabled needs kafka.sasl.existingSecret"], id="sasl-without-credentials"),
    pytest.param({"kafka": {"sasl": {"mechanism": "GSSAPI"}}}, ["/kafka/sasl/mechanism", "must be one of"], id="sasl-mechanism"),
    pytest.param({"redis": {"urls": []}}, ["/redis/urls", "minItems"], id="no-redis"),
    pytest.param({"redis": {"urls": ["redis-master:6379"]}}, ["/redis/urls/0", "does not match pattern"], id="redis-url-without-scheme"),
    pytest.param({"redis": {"password": "pw", "urls": ["redis://u:p@r:6379"]}}, ["already has credentials"], id="redis-credentials-twice"),
    pytest.param({"mongodb": {"uri": "http://mongo"}}, ["/mongodb/uri", "does not match pattern"], id="mongodb-uri"),
    pytest.param({"mongodb": {"database": "a.b"}}, ["/mongodb/database"], id="mongodb-database-name"),
    pytest.param({"config": {"engine": {"partitions": 8}}}, ["config.engine.partitions: set topics.partitions instead"], id="partitions-in-config"),
    pytest.param({"config": {"engine": {"batch": {"x": [{"y": 1}]}}}}, ["is not a value threds.toml can hold"], id="config-table-in-list"),
    pytest.param({"patterns": {"files": {"x.json": "{}"}}}, ['"x.json" must end in .pattern.json'], id="pattern-file-name"),
    pytest.param({"patterns": {"files": {"a.pattern.json": {"id": "a"}}}}, ["/patterns/files/a.pattern.json", "want string"], id="pattern-not-text"),
    pytest.param({"patterns": {"existingConfigMap": "mine", "files": {"a.pattern.json": "{}"}}}, ["exclude each other"], id="patterns-twice"),
    pytest.param({"logging": {"format": "xml"}}, ["/logging/format", "must be one of 'json', 'text'"], id="log-format"),
    pytest.param({"telemetry": {"otlp": {"samplerArg": "2"}}}, ["/telemetry/otlp/samplerArg"], id="sampler-ratio"),
    pytest.param({"telemetry": {"otlp": {"endpoint": "collector:4317"}}}, ["/telemetry/otlp/endpoint"], id="otlp-endpoint-without-scheme"),
    pytest.param({"telemetry": {"otlp": {"protocol": "grpc"}}}, ["/telemetry/otlp/protocol", "value must be 'http/protobuf'"], id="otlp-grpc"),
    pytest.param({"telemetry": {"otlp": {"sampler": "sometimes"}}}, ["/telemetry/otlp/sampler", "must be one of"], id="sampler-name"),
    pytest.param({"image": {"pullPolicy": "Sometimes"}}, ["/image/pullPolicy", "must be one of"], id="pull-policy"),
    pytest.param({"image": {"digest": "latest"}}, ["/image/digest"], id="image-digest"),
    pytest.param({"port": 70000}, ["/port", "maximum"], id="port-range"),
    pytest.param({"session": {"ingress": {"enabled": True, "hosts": []}}}, ["session.ingress.enabled needs at least one entry"], id="ingress-without-hosts"),
    pytest.param({"session": {"service": {"type": "ExternalName"}}}, ["/session/service/type", "must be one of"], id="service-type"),
    pytest.param({"metrics": {"serviceMonitor": {"interval": "30"}}}, ["/metrics/serviceMonitor/interval"], id="scrape-interval-unit"),
    pytest.param({"engine": {"env": [{"value": "x"}]}}, ["/engine/env/0", "missing property 'name'"], id="env-without-name"),
    pytest.param({"fullnameOverride": "x" * 51}, ["/fullnameOverride", "maxLength"], id="name-too-long"),
]


@pytest.mark.parametrize("values,expected", BAD_VALUES)
def test_bad_values_fail_with_a_clear_message(helm, chart, values, expected):
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)) as failure:
        chart.render(values, name="demo", namespace="threds", is_install=True)
    message = str(failure.value)
    for part in expected:
        assert part in message, f"{values}: {part!r} not in:\n{message}"


def test_lint_reports_bad_values_as_errors(helm):
    from conftest import CHART_DIR

    report = helm.lint(str(CHART_DIR), {"engine": {"replicas": 0}})
    assert any("/engine/replicas" in e for e in report["errors"]), report


def test_the_defaults_and_every_override_in_the_schema_examples_pass(chart):
    chart.validate_schema({})
    chart.validate_schema({"engine": {"replicas": 4}, "topics": {"partitions": 8, "replicationFactor": 3}})
