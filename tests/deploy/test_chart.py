"""The chart lints, and what it renders with the default values and with ci/production-values.yaml
is valid Kubernetes (JSON schemas of the oldest and newest supported versions) and keeps the
promises docs/kubernetes.md makes: roles, identity, probes, configuration, security, scaling,
monitoring."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import CHART_DIR, PRODUCTION_VALUES, REPO
from support.chart import annotations, component, env_map

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas.
KUBE_VERSIONS = ["1.27.0", "1.37.0"]
ROLES = ["engine", "session", "persistence"]

# Custom resources have no schema in kubernetes-validate: their required fields are checked here.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): ["spec.scaleTargetRef.name", "spec.triggers"],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector", "spec.endpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
}


def dig(obj, dotted):
    for part in dotted.split("."):
        obj = obj[part]
    return obj


@pytest.fixture(scope="module")
def default(render):
    return render()


@pytest.fixture(scope="module")
def production(render, production_values):
    return render(production_values)


@pytest.fixture(params=["default", "production"])
def either(request, default, production):
    return request.getfixturevalue(request.param)


def test_lint_passes_with_default_and_production_values(helm, production_values):
    for values in (None, production_values):
        report = helm.lint(str(CHART_DIR), values, strict=True) if values else helm.lint(str(CHART_DIR))
        errors = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not errors, report


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(version, default, production):
    import kubernetes_validate

    checked = set()
    for rendered in (default, production):
        for obj, source in zip(rendered.objects, rendered.sources):
            key = (obj["apiVersion"], obj["kind"])
            if key in CUSTOM_KINDS:
                for path in CUSTOM_KINDS[key]:
                    assert dig(obj, path), f"{source}: {obj['kind']} has no {path}"
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{source}: {obj['kind']} {obj['metadata']['name']} is invalid for {version}: {e.message} at {list(e.path)}")
            checked.add(obj["kind"])
    expected = {"StatefulSet", "Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget",
                "ServiceAccount", "Ingress", "HorizontalPodAutoscaler", "NetworkPolicy", "Job"}
    assert expected <= checked, f"not rendered: {expected - checked}"


def test_default_values_render_every_role_and_no_optional_object(default):
    kinds = sorted({o["kind"] for o in default.objects})
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount", "StatefulSet"]
    assert {component(o) for o in default.of_kind("Deployment")} == {"session", "persistence"}
    assert [component(o) for o in default.of_kind("StatefulSet")] == ["engine"]
    assert not default.hooks()


def test_production_values_render_the_optional_objects(production):
    kinds = {o["kind"] for o in production.objects}
    assert {"ScaledObject", "ServiceMonitor", "PrometheusRule", "Ingress", "HorizontalPodAutoscaler",
            "NetworkPolicy", "Job"} <= kinds
    # Existing Secrets only: the chart makes none for the roles (only the hook's ConfigMap).
    assert not production.of_kind("Secret")


def test_objects_carry_the_recommended_labels(either):
    for obj in either.objects:
        labels = obj["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, f"{obj['kind']} {obj['metadata']['name']} lacks {key}"


def test_engines_are_a_statefulset_named_by_their_pods(either):
    engine = either.workload("engine")
    assert engine["kind"] == "StatefulSet"
    assert engine["spec"]["podManagementPolicy"] == "Parallel", "a never-ready extra engine must not block others"
    headless = either.get("Service", engine["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    for role in ROLES:
        node = env_map(either.container(role))["THREDS_NODE_NAME"]
        assert node["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", role


def test_each_role_runs_its_subcommand_with_the_mounted_config(either):
    for role in ROLES:
        container = either.container(role)
        assert container["command"] == ["/usr/local/bin/threds"]
        assert container["args"][0] == role
        config = container["args"][container["args"].index("--config") + 1]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert config.rsplit("/", 1)[0] in mounts, f"{role}: {config} is not on a mounted volume"


def test_probes_use_the_node_health_endpoints(either):
    health = (REPO / "actors" / "src" / "node" / "mod.rs").read_text() + (REPO / "actors" / "src" / "node" / "health.rs").read_text()
    for role in ROLES:
        container = either.container(role)
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/livez"
        assert all(container[p]["httpGet"]["port"] == "http" for p in ("livenessProbe", "readinessProbe"))
    for path in ("/livez", "/readyz", "/metrics"):
        assert f'"{path}"' in health, f"the node no longer serves {path}"


def test_engine_grace_period_outlasts_its_lease_and_drain(either, default):
    engine = either.pod_spec("engine")
    assert engine["terminationGracePeriodSeconds"] >= 30
    lease_ms = default.get("ConfigMap", "demo-threds-config")["data"]["threds.toml"]
    assert "lease_ms = 10000" in lease_ms


def test_every_role_has_a_disruption_budget(either):
    budgets = {component(p): p for p in either.of_kind("PodDisruptionBudget")}
    assert set(budgets) == set(ROLES)
    for role, pdb in budgets.items():
        assert pdb["spec"]["selector"]["matchLabels"] == either.workload(role)["spec"]["selector"]["matchLabels"]


def test_pods_run_non_root_read_only_without_capabilities(either):
    for role in ROLES:
        pod = either.pod_spec(role)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        security = pod["containers"][0]["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        writable = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"] if not m.get("readOnly")]
        assert writable == ["/tmp"], f"{role}: writable mounts {writable}"


def test_patterns_setting_points_at_the_mounted_directory(default):
    container = default.container("engine")
    env = env_map(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["THREDS_MODEL_PATTERNS"]["value"] == mounts["patterns"]
    assert env["THREDS_MODEL_SESSIONS"]["value"].startswith(mounts["sessions-model"] + "/")
    assert env["THREDS_MODEL_RESOLVER"]["value"].startswith(mounts["resolver"] + "/")
    patterns = default.get("ConfigMap", "demo-threds-patterns")["data"]
    assert sorted(patterns) == ["approval.pattern.json", "echo.pattern.json"]


def test_the_chart_example_model_files_are_the_repository_defaults():
    for name in ("sessions_model.json", "resolver_config.json"):
        assert (CHART_DIR / "files" / name).read_text() == (REPO / "config" / name).read_text(), name
    shipped = sorted(p.name for p in (CHART_DIR / "files" / "patterns").iterdir())
    defaults = sorted(p.name for p in (REPO / "config" / "patterns").glob("*.pattern.json"))
    assert shipped == defaults
    for name in shipped:
        assert (CHART_DIR / "files" / "patterns" / name).read_text() == (REPO / "config" / "patterns" / name).read_text()


def test_settings_variables_are_the_runtime_setting_names(default):
    """Every THREDS_* variable the chart sets is a setting's variable listed in docs/operations.md
    (or THREDS_LOG / THREDS_TELEMETRY_LOG_FORMAT, read by the logger)."""
    documented = set(re.findall(r"`(THREDS_[A-Z0-9_]+)`", (REPO / "docs" / "operations.md").read_text()))
    logger = {"THREDS_LOG", "THREDS_TELEMETRY_LOG_FORMAT"}
    for role in ROLES:
        for name in env_map(default.container(role)):
            if name.startswith("THREDS_"):
                assert name in documented | logger, f"{role}: {name} is not a setting's variable"


def test_threds_toml_holds_whole_numbers_and_kafka_properties(render):
    rendered = render({"config": {"engine": {"batch": 64}, "documents": {"mongodb": {"max_pool_size": 2}}},
                       "kafka": {"properties": {"fetch.wait.max.ms": "5"}}})
    toml = rendered.get("ConfigMap", "demo-threds-config")["data"]["threds.toml"]
    assert "batch = 64\n" in toml and "max_pool_size = 2" in toml
    assert '"fetch.wait.max.ms" = "5"' in toml
    assert ".0" not in toml, toml


def test_credentials_come_from_existing_secrets(production):
    env = env_map(production.container("engine"))
    assert env["THREDS_AUTH_JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "threds-auth", "key": "jwt-secret"}
    assert env["THREDS_DOCUMENTS_MONGODB_URI"]["valueFrom"]["secretKeyRef"] == {"name": "threds-mongodb", "key": "mongodb-uri"}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "threds-redis", "key": "redis-password"}
    urls = env["THREDS_STORE_REDIS_URLS"]["value"].split(",")
    assert urls == [f"redis://:$(REDIS_PASSWORD)@redis-{x}:6379" for x in "abc"]
    assert env["THREDS_BUS_KAFKA_PROPERTIES"]["value"] == "sasl.username=$(KAFKA_SASL_USERNAME),sasl.password=$(KAFKA_SASL_PASSWORD)"
    names = [e["name"] for e in production.container("engine")["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("THREDS_STORE_REDIS_URLS"), "$(VAR) needs VAR defined first"
    assert names.index("KAFKA_SASL_PASSWORD") < names.index("THREDS_BUS_KAFKA_PROPERTIES")
    toml = production.get("ConfigMap", "demo-threds-topics")["data"]["threds.toml"]
    assert '"security.protocol" = "SASL_SSL"' in toml and '"ssl.ca.location" = "/etc/threds/kafka-ca/ca.crt"' in toml
    mounts = {m["mountPath"] for m in production.container("engine")["volumeMounts"]}
    assert "/etc/threds/kafka-ca" in mounts


def test_chart_made_secret_keeps_values_out_of_the_pod_spec(render):
    rendered = render({"auth": {"jwtSecret": "s3cret-s3cret-s3cret"}, "redis": {"password": "pw"}})
    assert rendered.secret_value("demo-threds", "jwt-secret") == "s3cret-s3cret-s3cret"
    assert rendered.secret_value("demo-threds", "redis-password") == "pw"
    spec = json.dumps(rendered.pod_spec("session"))
    assert "s3cret" not in spec and '"pw"' not in spec


def test_credentials_in_urls_go_to_the_chart_secret(render):
    rendered = render({"mongodb": {"uri": "mongodb://threds:m0ngo-pw@mongo:27017/?replicaSet=rs0"},
                       "redis": {"urls": ["redis://:r3dis-pw@a:6379", "redis://:r3dis-pw@b:6379"]}})
    env = env_map(rendered.container("engine"))
    assert env["THREDS_DOCUMENTS_MONGODB_URI"]["valueFrom"]["secretKeyRef"] == {"name": "demo-threds", "key": "mongodb-uri"}
    assert env["THREDS_STORE_REDIS_URLS"]["valueFrom"]["secretKeyRef"] == {"name": "demo-threds", "key": "redis-urls"}
    assert rendered.secret_value("demo-threds", "mongodb-uri") == "mongodb://threds:m0ngo-pw@mongo:27017/?replicaSet=rs0"
    assert rendered.secret_value("demo-threds", "redis-urls") == "redis://:r3dis-pw@a:6379,redis://:r3dis-pw@b:6379"
    for obj in rendered.objects:
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert "m0ngo-pw" not in text and "r3dis-pw" not in text, f"{obj['kind']} {obj['metadata']['name']}"


def test_the_console_route_can_be_left_out_of_the_ingress(render):
    rendered = render({"session": {"ingress": {"enabled": True, "console": False, "hosts": [{"host": "t.example.com"}]}}})
    ingress = rendered.of_kind("Ingress")[0]
    assert {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]} == {"/ws", "/events"}


def test_session_service_and_ingress_route_websocket_and_events(production):
    session = production.workload("session")
    service = production.get("Service", session["metadata"]["name"])
    assert service["spec"]["selector"] == session["spec"]["selector"]["matchLabels"]
    ingress = production.of_kind("Ingress")[0]
    paths = {p["path"]: p for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert set(paths) == {"/ws", "/events", "/console"}
    assert paths["/console"]["pathType"] == "Prefix" and paths["/ws"]["pathType"] == "Exact"
    assert all(p["backend"]["service"]["name"] == service["metadata"]["name"] for p in paths.values())
    assert int(annotations(ingress)["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert ingress["spec"]["tls"][0]["hosts"] == ["threds.example.com"]


def test_session_autoscaler_owns_the_replica_count(production):
    hpa = production.of_kind("HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo-threds-session"}
    assert "replicas" not in production.workload("session")["spec"]


def test_keda_scales_engines_on_group_lag_capped_at_partitions(production, render):
    scaled = production.of_kind("ScaledObject")[0]
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert scaled["spec"]["maxReplicaCount"] == 12, "24 asked, 12 partitions"
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "threds-engine" and trigger["metadata"]["topic"] == "threds.events"
    assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA metadata values are strings"
    assert trigger["authenticationRef"] == {"name": "threds-kafka-auth"}
    assert "replicas" not in production.workload("engine")["spec"]
    # The names KEDA watches are the runtime's (runtime/src/topology.rs).
    topology = (REPO / "runtime" / "src" / "topology.rs").read_text()
    assert 'const EVENTS: &str = "threds.events"' in topology and 'GROUP_PREFIX: &str = "threds-"' in topology
    small = render({"topics": {"partitions": 2}, "engine": {"replicas": 2, "keda": {"enabled": True, "minReplicas": 1, "maxReplicas": 8}}})
    assert small.of_kind("ScaledObject")[0]["spec"]["maxReplicaCount"] == 2


def test_service_monitor_scrapes_every_role(production):
    monitor = production.of_kind("ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]
    services = [s for s in production.of_kind("Service")
                if all(s["metadata"]["labels"].get(k) == v for k, v in selector["matchLabels"].items())
                and s["metadata"]["labels"]["app.kubernetes.io/component"] in selector["matchExpressions"][0]["values"]]
    assert sorted(component(s) for s in services) == sorted(ROLES)
    for service in services:
        assert any(p["name"] == monitor["spec"]["endpoints"][0]["port"] for p in service["spec"]["ports"])
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_alert_rules_cover_lag_dead_letters_fencing_restarts_and_readiness(production):
    rules = production.of_kind("PrometheusRule")[0]["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r for r in rules}
    for name in ("ThredsConsumerLagHigh", "ThredsConsumerLagGrowing", "ThredsDeadLetters", "ThredsFencingRefusals",
                 "ThredsServiceRestarting", "ThredsPodRestarting", "ThredsPodNotReady"):
        assert name in alerts, name
    for rule in rules:
        expr = rule["expr"]
        for opening, closing in ("()", "{}", "[]"):
            assert expr.count(opening) == expr.count(closing), f"{rule['alert']}: unbalanced {opening}{closing}"
        assert 'namespace="threds"' in expr, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert "docs/kubernetes.md#alerts" in rule["annotations"]["description"]


def test_network_policies_open_only_the_session_port_and_metrics(production):
    policies = {p["metadata"]["name"]: p for p in production.of_kind("NetworkPolicy")}
    session = policies["demo-threds-session"]
    assert session["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "session"
    assert session["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    everyone = policies["demo-threds"]
    assert everyone["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert everyone["spec"]["egress"][0]["ports"][0] == {"port": 53, "protocol": "UDP"}


def test_otel_variables_follow_the_otlp_values(production, default):
    assert not any(n.startswith("OTEL_") for n in env_map(default.container("engine"))), "off without an endpoint"
    for role in ROLES:
        env = env_map(production.container(role))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4318"
        assert env["OTEL_SERVICE_NAME"]["value"] == f"threds-{role}"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "http/protobuf"
        assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.05"
        attributes = dict(a.split("=", 1) for a in env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(","))
        assert attributes["k8s.pod.name"] == "$(THREDS_NODE_NAME)"
        assert attributes["k8s.namespace.name"] == "$(POD_NAMESPACE)"
        assert attributes["deployment.environment"] == "production"
        assert env["THREDS_TELEMETRY_LOG_FORMAT"]["value"] == "json"


def test_topics_hook_runs_before_install_and_upgrade(production):
    hooks = production.hooks()
    job = next(h for h in hooks if h["kind"] == "Job")
    assert annotations(job)["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["topics", "create"]
    assert container["args"][container["args"].index("--replication-factor") + 1] == "3"
    env = env_map(container)
    assert env["THREDS_ENGINE_PARTITIONS"]["value"] == "12"
    # A pre-install hook runs before the release's objects exist: it refers only to hooks and
    # to Secrets the user made.
    config_map = job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
    weights = {h["metadata"]["name"] + "/" + h["kind"]: int(annotations(h)["helm.sh/hook-weight"]) for h in hooks}
    assert weights[f"{config_map}/ConfigMap"] < weights[f"{job['metadata']['name']}/Job"]
    assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "threds-kafka"
    assert "serviceAccountName" not in job["spec"]["template"]["spec"]


def test_notes_tell_how_to_mint_a_token_and_connect(default, production):
    assert "threds token --participant" in default.notes
    assert "port-forward service/demo-threds-session" in default.notes
    assert "/ws" in default.notes
    assert "export THREDS_URL=https://threds.example.com" in production.notes
    assert "get secret threds-auth" in production.notes


# Values documented as a whole (their keys are Kubernetes' or threds.toml's own).
WHOLE = ("config", "podSecurityContext", "securityContext", "probes", "resources", "annotations")


def test_chart_readme_documents_every_value():
    readme = (CHART_DIR / "README.md").read_text()
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    def leaves(tree, prefix=""):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and key not in WHOLE:
                yield from leaves(value, path + ".")
            else:
                yield path

    def documented(path):
        role, _, rest = path.partition(".")
        return f"`{path}`" in readme or (role in ROLES and f"`<role>.{rest}`" in readme)

    missing = [p for p in leaves(values) if not documented(p)]
    assert not missing, f"README.md does not document {missing}"
