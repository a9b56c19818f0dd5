"""Incidents in the tenant API (leasing/api/incidents.py): a tenant reports a node it holds
now, and sees the incidents of nodes it held while they were open, nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from clusters import fleet
from clusters.choices import IncidentSource, IncidentStatus, NodeStatus
from clusters.models import Incident, Node
from leasing.api.incidents import reporter_of
from leasing.models import Allocation, IdempotencyRecord
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory

URL = "/api/v1/incidents/"
DAY = dt.timedelta(days=1)
pytestmark = pytest.mark.django_db


def hold(tenant, node, start, end):
    """The tenant holds `node` over `[start, end)` (one lease, one line, one allocation)."""
    lease = LeaseFactory(tenant=tenant, commencement_date=start.date())
    line = LeaseLineFactory(lease=lease, cluster=node.cluster, node_count=1)
    Allocation.objects.create(line=line, node=node, starts_at=start, ends_at=end)
    return lease


@pytest.fixture
def fleet_nodes():
    return list(cluster_with_nodes(4).nodes.order_by("pk"))


@pytest.fixture
def now():
    return timezone.now()


def state():
    return (
        list(Incident.objects.order_by("pk").values_list("pk", "status")),
        list(Node.objects.order_by("pk").values_list("pk", "status")),
        IdempotencyRecord.objects.count(),
    )


def test_a_tenant_reports_a_node_it_holds_and_it_goes_down(
    tenant_a, api_a, fleet_nodes, now, event_consumer, django_capture_on_commit_callbacks
):
    seen = event_consumer([fleet.FleetEvent.INCIDENT_OPENED])
    node = fleet_nodes[0]
    hold(tenant_a, node, now - 10 * DAY, now + 10 * DAY)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.post(
            URL,
            {
                "node": node.hostname,
                "category": "nvlink",
                "description": "NVLink errors on GPU 3",
                "evidence": {"xid": 74, "gpus": [3]},
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["node"] == {"hostname": node.hostname, "cluster": node.cluster.slug}
    assert (body["category"], body["severity"], body["source"], body["status"]) == (
        "nvlink",
        "down",
        "tenant",
        "open",
    )
    assert body["reported_by_you"] is True
    assert body["evidence"] == {"xid": 74, "gpus": [3]}
    incident = Incident.objects.get(pk=body["id"])
    assert incident.reporter == reporter_of(tenant_a)
    assert Node.objects.get(pk=node.pk).status == NodeStatus.DOWN
    assert [e.subject_id for e in seen] == [incident.pk]
    # The same report with the same key replays; nothing new.
    again = api_a.post(
        URL, {"node": node.hostname, "category": "gpu"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    replay = api_a.post(
        URL, {"node": node.hostname, "category": "gpu"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert replay.json() == again.json()
    assert Incident.objects.count() == 2


def test_a_node_not_held_now_is_404_like_no_node_at_all(
    tenant_a, tenant_b, api_a, fleet_nodes, now
):
    a_past, b_now, a_future, _ = fleet_nodes
    hold(tenant_a, a_past, now - 20 * DAY, now - 10 * DAY)
    hold(tenant_b, b_now, now - DAY, now + DAY)
    hold(tenant_a, a_future, now + DAY, now + 2 * DAY)
    before = state()
    bodies = []
    for hostname in (a_past.hostname, b_now.hostname, a_future.hostname, "no-such-node"):
        response = api_a.post(URL, {"node": hostname, "category": "gpu"}, format="json")
        assert response.status_code == 404, (hostname, response.content)
        bodies.append(response.json())
    assert all(b == bodies[0] for b in bodies)
    assert b_now.hostname not in str(bodies)
    assert state() == before


def test_a_tenant_sees_incidents_only_while_it_held_the_node(
    tenant_a, tenant_b, api_a, api_b, fleet_nodes
):
    node, other, *_ = fleet_nodes
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    lease_a = hold(tenant_a, node, t0, t0 + 30 * DAY)
    hold(tenant_b, node, t0 + 30 * DAY, t0 + 60 * DAY)
    before = fleet.incident_open(node=node, category="gpu", source="operator", now=t0 - 5 * DAY)
    fleet.incident_resolve(incident=before, now=t0 - DAY)  # before A: nobody's
    during_a = fleet.incident_open(
        node=node,
        category="gpu",
        source=IncidentSource.TENANT,
        reporter=reporter_of(tenant_a),
        description="A's words",
        now=t0 + 3 * DAY,
    )
    # Open across the hand-over: both see it; B does not see A's words.
    fleet.incident_resolve(incident=during_a, now=t0 + 31 * DAY, resolution="A's fix")
    during_b = fleet.incident_open(
        node=node, category="power", source="monitoring", now=t0 + 40 * DAY
    )
    elsewhere = fleet.incident_open(node=other, category="gpu", source="operator", now=t0)

    def ids(api, query=""):
        response = api.get(URL + query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(api_a) == {during_a.pk}
    assert ids(api_b) == {during_a.pk, during_b.pk}
    seen_by_b = api_b.get(f"{URL}{during_a.pk}/").json()
    assert seen_by_b["reported_by_you"] is False
    assert (seen_by_b["description"], seen_by_b["evidence"], seen_by_b["resolution"]) == (
        None,
        None,
        None,
    )
    assert "A's" not in api_b.get(URL).content.decode()
    assert api_a.get(f"{URL}{during_a.pk}/").json()["description"] == "A's words"
    for hidden in (before, during_b, elsewhere):
        assert api_a.get(f"{URL}{hidden.pk}/").status_code == 404
    assert ids(api_b, "?status=open") == {during_b.pk}
    assert ids(api_b, f"?node={node.hostname}&category=power") == {during_b.pk}
    assert ids(api_a, f"?lease={lease_a.pk}") == {during_a.pk}
    assert ids(api_b, f"?lease={lease_a.pk}") == set()  # not B's lease: nothing of it
    assert ids(api_b, "?opened_at__gte=2026-04-01") == {during_b.pk}
    assert during_b.status == IncidentStatus.OPEN


BAD = [
    ("unknown-category", {"category": "plumbing"}, "category"),
    ("ok-severity", {"severity": "ok"}, "severity"),
    ("evidence-not-object", {"evidence": [1, 2]}, "evidence"),
    ("evidence-too-deep", {"evidence": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "evidence"),
    ("evidence-too-large", {"evidence": {"x": "y" * 17_000}}, "evidence"),
    ("description-too-long", {"description": "x" * 4001}, "description"),
    ("node-not-text", {"node": 12}, "node"),
    ("unknown-field", {"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("name", "patch", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_reports_are_400_naming_the_field_and_write_nothing(
    name, patch, field, tenant_a, api_a, fleet_nodes, now
):
    node = fleet_nodes[0]
    hold(tenant_a, node, now - DAY, now + DAY)
    before = state()
    body = {"node": node.hostname, "category": "gpu"} | patch
    response = api_a.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=f"bad-{name}")
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"]
    assert state() == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?opened_at__gte=2026-11-03T08:00:00", "opened_at__gte"),  # naive
        ("?opened_at__gte=2026-11-03&opened_at__lt=2026-11-01", "opened_at__lt"),  # end first
        ("?status=closed", "status"),
        ("?lease=abc", "lease"),
        ("?colour=red", "colour"),
    ],
)
def test_bad_list_queries_are_400_naming_the_parameter(query, field, api_a):
    response = api_a.get(URL + query)
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"]
