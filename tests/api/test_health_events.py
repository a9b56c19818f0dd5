"""The operator ingestion API: monitoring pushes health events with its own key
(docs/api.md, "Operator ingestion"; clusters/ingest.py)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters import fleet
from clusters.choices import IncidentSource, IncidentStatus, NodeStatus
from clusters.ingest import MAX_BATCH, monitoring_source_create, monitoring_source_revoke
from clusters.models import HealthEvent, Incident, MonitoringSource, Node
from common.keys import hash_key
from tests.factories.clusters import cluster_with_nodes

from .conftest import client_for

URL = "/api/ops/v1/health-events/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    return monitoring_source_create(name="prometheus-dc1")


@pytest.fixture
def ops(source):
    return client_for(source[1])


@pytest.fixture
def nodes():
    return list(cluster_with_nodes(4).nodes.order_by("pk"))


def ago(minutes: int) -> str:
    return (timezone.now() - dt.timedelta(minutes=minutes)).isoformat()


def event(event_id, node, severity="down", category="gpu", minutes=10, **extra):
    body = {
        "event_id": event_id,
        "node": node.hostname,
        "observed_at": ago(minutes),
        "severity": severity,
        **extra,
    }
    if category:
        body["category"] = category
    return body


def state():
    return (
        HealthEvent.objects.count(),
        list(Incident.objects.order_by("pk").values_list("pk", "status")),
        list(Node.objects.order_by("pk").values_list("pk", "status")),
    )


def test_the_command_prints_a_key_once_and_stores_only_its_hash():
    out = io.StringIO()
    call_command("create_monitoring_source", "nagios", stdout=out)
    raw = out.getvalue().strip()
    assert raw.startswith("mk_")
    row = MonitoringSource.objects.get(name="nagios")
    assert row.key_hash == hash_key(raw)
    assert raw not in str(MonitoringSource.objects.filter(name="nagios").values())


def test_a_batch_opens_and_resolves_monitoring_incidents_and_node_status_follows(
    ops, nodes, event_consumer, django_capture_on_commit_callbacks
):
    seen = event_consumer([fleet.FleetEvent.INCIDENT_OPENED, fleet.FleetEvent.INCIDENT_RESOLVED])
    a, b, c, _ = nodes
    with django_capture_on_commit_callbacks(execute=True):
        response = ops.post(
            URL,
            {
                "events": [
                    event("e1", a, "down", "gpu", minutes=30),
                    event("e2", b, "degraded", "network", minutes=30, details={"loss": 0.02}),
                    event("e3", a, "down", "gpu", minutes=20),  # already open: nothing new
                    event("e4", c, "ok", "", minutes=20),  # nothing open: stored only
                ]
            },
            format="json",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["received"], body["applied"], body["duplicates"]) == (4, 4, [])
    assert len(body["incidents_opened"]) == 2
    assert body["incidents_resolved"] == []
    statuses = dict(Node.objects.values_list("hostname", "status"))
    assert statuses[a.hostname] == NodeStatus.DOWN
    assert statuses[b.hostname] == NodeStatus.DEGRADED
    assert statuses[c.hostname] == NodeStatus.ACTIVE
    opened_a = Incident.objects.get(node=a)
    assert (opened_a.source, opened_a.reporter) == (IncidentSource.MONITORING, "prometheus-dc1")
    assert HealthEvent.objects.get(event_id="e1").incident == opened_a
    assert HealthEvent.objects.get(event_id="e3").incident is None
    assert [e.kind for e in seen] == ["incident.opened", "incident.opened"]

    # The same batch again changes nothing; an "ok" resolves a's incident.
    with django_capture_on_commit_callbacks(execute=True):
        again = ops.post(
            URL,
            {"events": [event("e1", a, minutes=30), event("e5", a, "ok", "", minutes=5)]},
            format="json",
        )
    assert again.status_code == 200, again.content
    assert again.json()["duplicates"] == ["e1"]
    assert again.json()["incidents_resolved"] == [opened_a.pk]
    opened_a.refresh_from_db()
    assert opened_a.status == IncidentStatus.RESOLVED
    assert HealthEvent.objects.get(event_id="e5").incident == opened_a
    assert Node.objects.get(pk=a.pk).status == NodeStatus.ACTIVE
    assert HealthEvent.objects.count() == 5
    assert [e.kind for e in seen][-1] == "incident.resolved"


def test_monitoring_never_resolves_a_tenant_or_operator_incident(ops, nodes):
    a = nodes[0]
    reported = fleet.incident_open(
        node=a, category="gpu", source=IncidentSource.TENANT, now=timezone.now()
    )
    response = ops.post(URL, {"events": [event("ok1", a, "ok", "", minutes=0)]}, format="json")
    assert response.status_code == 200
    reported.refresh_from_db()
    assert reported.status == IncidentStatus.OPEN


def test_an_incident_opened_and_healed_within_one_batch_is_stored_resolved(ops, nodes):
    a = nodes[0]
    response = ops.post(
        URL,
        {"events": [event("x2", a, "ok", "gpu", minutes=5), event("x1", a, minutes=15)]},
        format="json",
    )
    assert response.status_code == 200, response.content
    incident = Incident.objects.get(node=a)
    assert incident.status == IncidentStatus.RESOLVED
    assert dt.timedelta(minutes=9) < incident.resolved_at - incident.opened_at
    assert incident.resolved_at - incident.opened_at < dt.timedelta(minutes=11)
    assert Node.objects.get(pk=a.pk).status == NodeStatus.ACTIVE


# --- bad input: refused whole, every failing item named, nothing written ----------------------

NAIVE = "2026-11-03T08:00:00"


def _bad_batches(nodes):
    a, b, *_ = nodes
    ok = event("good", a)
    return [
        ("naive-instant", [ok, event("n", b) | {"observed_at": NAIVE}], "events[1].observed_at"),
        ("future-instant", [ok, event("f", b, minutes=-60)], "events[1].observed_at"),
        ("unknown-node", [ok, event("u", b) | {"node": "no-such-host"}], "events[1].node"),
        ("repeated-id", [ok, event("good", b)], "events[1].event_id"),
        ("bad-category", [ok, event("c", b, category="plumbing")], "events[1].category"),
        ("bad-severity", [ok, event("s", b, severity="on-fire")], "events[1].severity"),
        ("no-category-when-down", [ok, event("m", b, category="")], "events[1].category"),
        ("unknown-field", [ok, event("k", b) | {"colour": "red"}], "events[1].colour"),
        (
            "deep-details",
            [ok, event("d", b, details={"a": {"b": {"c": {"d": {}}}}})],
            "events[1].details",
        ),
        ("huge-details", [ok, event("h", b, details={"x": "y" * 3000})], "events[1].details"),
        ("oversized", [event(f"o{i}", a) for i in range(MAX_BATCH + 1)], "events"),
        ("empty", [], "events"),
    ]


BAD_NAMES = [
    "naive-instant",
    "future-instant",
    "unknown-node",
    "repeated-id",
    "bad-category",
    "bad-severity",
    "no-category-when-down",
    "unknown-field",
    "deep-details",
    "huge-details",
    "oversized",
    "empty",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_malformed_batch_is_refused_whole_naming_the_item(name, ops, nodes):
    batch, field = next((b, f) for n, b, f in _bad_batches(nodes) if n == name)
    before = state()
    response = ops.post(URL, {"events": batch}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["extra"]["fields"], body
    assert state() == before


def test_every_failing_item_is_named_at_once(ops, nodes):
    a, b, *_ = nodes
    batch = [event("1", a), event("2", b) | {"node": "nope"}, event("3", a, category="zz")]
    response = ops.post(URL, {"events": batch}, format="json")
    assert set(response.json()["extra"]["fields"]) == {"events[1].node", "events[2].category"}


# --- credentials and limits -------------------------------------------------------------------


def test_tenant_keys_revoked_and_missing_keys_are_refused(source, key_a, nodes):
    body = {"events": [event("t", nodes[0])]}
    for client in (client_for(None), client_for(key_a), client_for("mk_nonsense")):
        response = client.post(URL, body, format="json")
        assert response.status_code == 401, response.content
    monitoring_source_revoke(source=source[0])
    assert client_for(source[1]).post(URL, body, format="json").status_code == 401
    assert HealthEvent.objects.count() == 0


def test_a_source_key_opens_nothing_of_the_tenant_api(ops):
    assert ops.get("/api/v1/leases/").status_code == 401


def test_batches_are_throttled_per_source_with_retry_after(ops, nodes, settings):
    settings.OPS_INGEST_THROTTLE_RATE = "2/min"
    for i in range(2):
        response = ops.post(URL, {"events": [event(f"r{i}", nodes[0])]}, format="json")
        assert response.status_code == 200
    refused = ops.post(URL, {"events": [event("r9", nodes[0])]}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    other = client_for(monitoring_source_create(name="other")[1])
    assert other.post(URL, {"events": [event("r9", nodes[0])]}, format="json").status_code == 200


def test_a_batch_costs_the_same_queries_whatever_its_size(source, ops):
    cluster = cluster_with_nodes(200)
    hosts = list(cluster.nodes.order_by("pk"))

    def queries(prefix: str, count: int, offset: int) -> int:
        batch = [event(f"{prefix}{i}", hosts[offset + i], "down", "gpu") for i in range(count)]
        with CaptureQueriesContext(connection) as ctx:
            assert ops.post(URL, {"events": batch}, format="json").status_code == 200
        return len(ctx.captured_queries)

    small = queries("s", 5, 0)
    # The same statements; on SQLite a bulk insert splits at its 999-parameter limit (two
    # inserts: incidents and events), on PostgreSQL it does not. The first batch also
    # records the key's last use (once a minute).
    assert small - 1 <= queries("l", 150, 10) <= small - 1 + 2


def test_the_ops_endpoint_has_its_own_schema_and_not_the_tenants(client):
    ops_doc = client.get("/api/ops/schema/?format=json").json()
    assert URL in ops_doc["paths"]
    assert all(p.startswith("/api/ops/v1/") for p in ops_doc["paths"])
    assert "MonitoringKey" in ops_doc["components"]["securitySchemes"]
    tenant_doc = client.get("/api/schema/?format=json").json()
    assert not [p for p in tenant_doc["paths"] if p.startswith("/api/ops/")]
