"""The fleet's own facts drive node status (docs/rules/fleet.md): clusters/fleet.py."""

import datetime as dt

import pytest

from clusters import fleet
from clusters.choices import (
    IncidentSource,
    IncidentStatus,
    MaintenanceCategory,
    MaintenanceKind,
    MaintenanceScope,
    MaintenanceStatus,
    NodeStatus,
    Severity,
)
from clusters.models import Incident, MaintenanceWindow, Node
from tests.factories.clusters import cluster_with_nodes

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)


def test_an_incident_takes_its_node_down_until_resolved_and_says_so(
    event_consumer, django_capture_on_commit_callbacks
):
    seen = event_consumer([fleet.FleetEvent.INCIDENT_OPENED, fleet.FleetEvent.INCIDENT_RESOLVED])
    node = cluster_with_nodes(2).nodes.first()
    with django_capture_on_commit_callbacks(execute=True):
        incident = fleet.incident_open(
            node=node, category="gpu", source=IncidentSource.OPERATOR, now=T0, description="Xid 79"
        )
    node.refresh_from_db()
    assert node.status == NodeStatus.DOWN
    assert node.status_changed_at == T0
    assert fleet.open_incident_node_ids() == {node.pk}
    with django_capture_on_commit_callbacks(execute=True):
        fleet.incident_resolve(incident=incident, now=T0 + dt.timedelta(hours=5), resolution="swap")
    node.refresh_from_db()
    incident.refresh_from_db()
    assert node.status == NodeStatus.ACTIVE
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == T0 + dt.timedelta(hours=5)
    assert [e.kind for e in seen] == ["incident.opened", "incident.resolved"]
    with pytest.raises(fleet.IncidentClosed):
        fleet.incident_resolve(incident=incident, now=T0 + dt.timedelta(hours=6))


def test_down_outranks_maintenance_which_outranks_degraded():
    cluster = cluster_with_nodes(3)
    a, b, c = cluster.nodes.order_by("pk")
    fleet.incident_open(
        node=a, category="network", source="monitoring", severity=Severity.DEGRADED, now=T0
    )
    window = MaintenanceWindow.objects.create(
        title="Firmware",
        scope=MaintenanceScope.CLUSTER,
        cluster=cluster,
        category=MaintenanceCategory.FIRMWARE,
        kind=MaintenanceKind.PLANNED,
        status=MaintenanceStatus.IN_PROGRESS,
        announced_at=T0 - dt.timedelta(days=10),
        starts_at=T0,
        ends_at=T0 + dt.timedelta(hours=8),
    )
    fleet.incident_open(node=b, category="power", source="operator", now=T0)
    fleet.node_refresh_status(node_ids=[a.pk, b.pk, c.pk], now=T0)
    statuses = dict(cluster.nodes.values_list("pk", "status"))
    assert statuses == {
        a.pk: NodeStatus.MAINTENANCE,
        b.pk: NodeStatus.DOWN,
        c.pk: NodeStatus.MAINTENANCE,
    }
    assert set(fleet.window_nodes(window).values_list("pk", flat=True)) == {a.pk, b.pk, c.pk}


def test_a_bad_incident_writes_nothing():
    node = cluster_with_nodes(1).nodes.get()
    with pytest.raises(fleet.InvalidIncident):
        fleet.incident_open(node=node, category="gremlins", source="operator", now=T0)
    with pytest.raises(fleet.InvalidIncident):
        fleet.incident_open(node=node, category="gpu", source="operator", severity="ok", now=T0)
    assert not node.incidents.exists()


def test_a_refresh_writes_only_the_nodes_named_whose_status_moves():
    cluster = cluster_with_nodes(4)
    a, b, c, d = cluster.nodes.order_by("pk")
    for node in (a, b):
        Incident.objects.create(
            node=node, category="gpu", source=IncidentSource.OPERATOR, opened_at=T0
        )
    Incident.objects.create(
        node=c,
        category="gpu",
        source=IncidentSource.OPERATOR,
        severity=Severity.DEGRADED,
        opened_at=T0,
    )
    Incident.objects.create(
        node=c,
        category="power",
        source=IncidentSource.OPERATOR,
        status=IncidentStatus.RESOLVED,
        opened_at=T0,
        resolved_at=T0 + dt.timedelta(hours=1),
    )
    Node.objects.filter(pk=b.pk).update(status=NodeStatus.DOWN, status_changed_at=T0)
    later = T0 + dt.timedelta(hours=2)
    # a moves to down, b is down already, c's open incident is only degraded; d is not named.
    assert fleet.node_refresh_status(node_ids=[a.pk, b.pk, c.pk, a.pk], now=later) == 2
    rows = {n.pk: (n.status, n.status_changed_at) for n in cluster.nodes.all()}
    assert rows == {
        a.pk: (NodeStatus.DOWN, later),
        b.pk: (NodeStatus.DOWN, T0),
        c.pk: (NodeStatus.DEGRADED, later),
        d.pk: (NodeStatus.ACTIVE, None),
    }
    assert fleet.node_refresh_status(node_ids=[a.pk, b.pk, c.pk], now=later) == 0
    assert fleet.node_refresh_status(node_ids=[], now=later) == 0


def test_the_windows_of_nodes_are_those_of_their_nodes_cluster_and_campus_each_once():
    cluster = cluster_with_nodes(3)
    neighbour = cluster_with_nodes(2, site=cluster.site)
    elsewhere = cluster_with_nodes(2)
    a, b, _ = cluster.nodes.order_by("pk")
    x = neighbour.nodes.order_by("pk").first()

    def window(title, scope, **where):
        w = MaintenanceWindow.objects.create(
            title=title,
            scope=scope,
            category=MaintenanceCategory.FIRMWARE,
            kind=MaintenanceKind.PLANNED,
            announced_at=T0 - dt.timedelta(days=10),
            starts_at=T0,
            ends_at=T0 + dt.timedelta(hours=8),
            **{k: v for k, v in where.items() if k != "nodes"},
        )
        w.nodes.set(where.get("nodes", []))
        return w

    on_a_and_b = window("two nodes", MaintenanceScope.NODES, nodes=[a, b])
    on_x = window("a neighbour's node", MaintenanceScope.NODES, nodes=[x])
    whole_cluster = window("the cluster", MaintenanceScope.CLUSTER, cluster=cluster)
    campus = window("the campus", MaintenanceScope.SITE, site=cluster.site)
    window("another campus", MaintenanceScope.SITE, site=elsewhere.site)
    window("another cluster", MaintenanceScope.CLUSTER, cluster=elsewhere)

    def windows(*nodes):
        found = list(fleet.windows_of_nodes([n.pk for n in nodes]).values_list("pk", flat=True))
        assert len(found) == len(set(found))  # each window once, however many nodes match
        return set(found)

    assert windows(a, b) == {on_a_and_b.pk, whole_cluster.pk, campus.pk}
    assert windows(x) == {on_x.pk, campus.pk}
    assert windows(a, x) == {on_a_and_b.pk, on_x.pk, whole_cluster.pk, campus.pk}
    assert windows() == set()
