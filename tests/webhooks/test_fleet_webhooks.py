"""Webhooks of the fleet (webhooks/fleet.py): each of the six kinds reaches the tenants it
concerns, signed, through a real local receiver; other tenants get nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from django.utils import timezone

from clusters import fleet
from clusters.choices import (
    IncidentSource,
    MaintenanceCategory,
    MaintenanceKind,
    MaintenanceScope,
    MaintenanceStatus,
)
from clusters.models import MaintenanceWindow
from common import events
from common.models import DomainEvent
from leasing.models import Allocation
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory
from webhooks import services as webhooks
from webhooks.choices import WebhookDeliveryStatus
from webhooks.models import WebhookDelivery

from .test_webhooks import Receiver

DAY = dt.timedelta(days=1)
pytestmark = pytest.mark.django_db


@pytest.fixture
def receivers():
    made = {"a": Receiver(), "b": Receiver()}
    yield made
    for r in made.values():
        r.close()


@pytest.fixture
def world(tenant_a, tenant_b, receivers):
    """Tenant A holds node 0 now, tenant B node 1; both listen to everything."""
    now = timezone.now()
    nodes = list(cluster_with_nodes(3).nodes.order_by("pk"))
    leases = {}
    for name, tenant, node in (("a", tenant_a, nodes[0]), ("b", tenant_b, nodes[1])):
        lease = LeaseFactory(tenant=tenant, commencement_date=(now - 10 * DAY).date())
        line = LeaseLineFactory(lease=lease, cluster=node.cluster, node_count=1)
        Allocation.objects.create(
            line=line, node=node, starts_at=now - 10 * DAY, ends_at=now + 30 * DAY
        )
        leases[name] = lease
    endpoints = {
        "a": webhooks.webhook_endpoint_create(tenant=tenant_a, url=receivers["a"].url),
        "b": webhooks.webhook_endpoint_create(tenant=tenant_b, url=receivers["b"].url),
    }
    return {"now": now, "nodes": nodes, "leases": leases, "endpoints": endpoints}


def send_all(receivers, kind) -> dict[str, list[dict]]:
    """Attempt every pending delivery of `kind` for real; the bodies each receiver got."""
    for delivery in WebhookDelivery.objects.filter(event_type=kind):
        assert webhooks.delivery_attempt(delivery_id=delivery.pk) == WebhookDeliveryStatus.SUCCEEDED
    got = {}
    for name, receiver in receivers.items():
        got[name] = [json.loads(body) for _, body in receiver.requests if kind in body.decode()]
        for headers, body in receiver.requests:
            endpoint = WebhookDelivery.objects.get(event_id=headers["webhook-id"]).endpoint
            assert webhooks.verify(endpoint.secret, headers, body)
    return got


def test_incidents_reach_the_tenant_holding_the_node_only(
    world, receivers, django_capture_on_commit_callbacks
):
    node = world["nodes"][0]
    with django_capture_on_commit_callbacks(execute=True):
        incident = fleet.incident_open(
            node=node, category="gpu", source=IncidentSource.OPERATOR, now=world["now"]
        )
    got = send_all(receivers, "incident.opened")
    assert got["b"] == []
    [body] = got["a"]
    assert body["type"] == "incident.opened"
    assert body["id"] == f"evt_incident_opened_{incident.pk}"
    assert body["data"] == {
        "incident": incident.pk,
        "hostname": node.hostname,
        "category": "gpu",
        "severity": "down",
        "source": "operator",
        "status": "open",
        "opened_at": world["now"].isoformat(),
        "resolved_at": None,
    }
    with django_capture_on_commit_callbacks(execute=True):
        fleet.incident_resolve(incident=incident, now=world["now"] + dt.timedelta(hours=2))
    got = send_all(receivers, "incident.resolved")
    assert got["b"] == []
    assert [b["data"]["status"] for b in got["a"]] == ["resolved"]


def test_an_incident_on_a_node_nobody_holds_tells_nobody(
    world, receivers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        fleet.incident_open(
            node=world["nodes"][2], category="power", source="operator", now=world["now"]
        )
    assert not WebhookDelivery.objects.exists()


def _window(world, starts_in=8 * DAY):
    now = world["now"]
    return MaintenanceWindow.objects.create(
        title="Switch firmware",
        scope=MaintenanceScope.NODES,
        category=MaintenanceCategory.FIRMWARE,
        kind=MaintenanceKind.PLANNED,
        status=MaintenanceStatus.SCHEDULED,
        announced_at=now,
        starts_at=now + starts_in,
        ends_at=now + starts_in + dt.timedelta(hours=4),
    )


def _window_payload(window) -> dict:
    return {
        "window": window.pk,
        "title": window.title,
        "scope": window.scope,
        "kind": window.kind,
        "category": window.category,
        "status": window.status,
        "announced_at": window.announced_at.isoformat(),
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
    }


@pytest.mark.parametrize("kind", ["maintenance.scheduled", "maintenance.changed"])
def test_maintenance_reaches_the_tenants_holding_its_nodes_during_it(
    kind, world, receivers, django_capture_on_commit_callbacks
):
    window = _window(world)
    window.nodes.set([world["nodes"][0], world["nodes"][2]])
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.emit(
            kind,
            subject="maintenance_window",
            subject_id=window.pk,
            payload=_window_payload(window),
            occurred_at=world["now"],
        )
    got = send_all(receivers, kind)
    assert got["b"] == []
    [body] = got["a"]
    assert body["data"] == _window_payload(window)
    # A window after A's allocation ends tells nobody.
    later = _window(world, starts_in=40 * DAY)
    later.nodes.set([world["nodes"][0]])
    before = WebhookDelivery.objects.count()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.emit(
            kind,
            subject="maintenance_window",
            subject_id=later.pk,
            payload=_window_payload(later),
            occurred_at=world["now"],
        )
    assert WebhookDelivery.objects.count() == before


@pytest.mark.parametrize(
    ("kind", "subject", "payload"),
    [
        (
            "node.accepted",
            "acceptance_record",
            {"record": 7, "node": 1, "hostname": "h", "accepted_at": "2026-01-01T00:00:00+00:00"},
        ),
        (
            "node.replaced",
            "replacement",
            {"replacement": 9, "failed_hostname": "f", "spare_hostname": "s", "incident": 3},
        ),
    ],
)
def test_acceptance_and_replacement_reach_the_lease_tenant(
    kind, subject, payload, world, receivers, tenant_a, django_capture_on_commit_callbacks
):
    lease = world["leases"]["a"]
    full = payload | {"tenant": tenant_a.pk, "lease": lease.pk, "lease_number": lease.number}
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.emit(kind, subject=subject, subject_id=1, payload=full, occurred_at=world["now"])
    got = send_all(receivers, kind)
    assert got["b"] == []
    [body] = got["a"]
    assert "tenant" not in body["data"]
    assert body["data"]["lease_number"] == lease.number


def test_no_endpoint_listening_writes_no_event(world, django_capture_on_commit_callbacks):
    for endpoint in world["endpoints"].values():
        webhooks.webhook_endpoint_disable(endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        fleet.incident_open(
            node=world["nodes"][0], category="gpu", source="operator", now=world["now"]
        )
    assert not DomainEvent.objects.filter(kind="incident.opened").exists()


def test_tenants_may_subscribe_to_the_fleet_kinds(api_a):
    kinds = list(webhooks.FLEET_EVENT_TYPES)
    response = api_a.post(
        "/api/v1/webhook-endpoints/",
        {"url": "https://example.com/fleet", "event_types": kinds},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert sorted(response.json()["event_types"]) == sorted(kinds)
