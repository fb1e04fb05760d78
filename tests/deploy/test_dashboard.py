"""The Grafana dashboard (deploy/grafana/threds-dashboard.json) loads as a dashboard: panels with
unique ids on a grid without overlaps, every query on the Prometheus data source variable and
scoped to the chosen namespace and roles. (The smoke test checks that its metrics exist.)"""

from __future__ import annotations

import json
import re

import pytest

from conftest import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "threds-dashboard.json"


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def test_dashboard_has_its_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "threds_" in variables["namespace"]["definition"]
    assert variables["job"]["multi"] and variables["job"]["includeAll"]
    assert dashboard["uid"] and dashboard["title"] == "Threds"


def test_panels_have_unique_ids_and_do_not_overlap(dashboard):
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken = set()
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_every_query_uses_the_variables(dashboard):
    queries = [(p["title"], t) for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
    assert len(queries) >= 20
    for title, target in queries:
        assert target["datasource"]["uid"] == "${datasource}", title
        expr = target["expr"]
        assert 'namespace="$namespace"' in expr and 'job=~"$job"' in expr, title
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), title
        for counter in re.findall(r"\b(threds_\w+_total)\b", expr):
            assert re.search(rf"(rate|increase)\({counter}\{{", expr), f"{title}: {counter} without rate/increase"


def test_dashboard_covers_the_issue_metrics(dashboard):
    text = DASHBOARD.read_text()
    for metric in ("threds_events_consumed_total", "threds_messages_published_total", "threds_step_duration_seconds_bucket",
                   "threds_steps_total", "threds_live_threds", "threds_consumer_lag", "threds_dead_letters_total",
                   "threds_fencing_refusals_total", "threds_lease_grants_total", "threds_timers_pending",
                   "threds_timer_lateness_seconds_bucket", "threds_outbox_backlog", "threds_websocket_connections",
                   "threds_slow_clients_disconnected_total", "threds_store_round_trips_total", "threds_service_restarts_total"):
        assert metric in text, metric
