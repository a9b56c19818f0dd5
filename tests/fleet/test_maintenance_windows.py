"""Maintenance windows: create, change, cancel and the status job (clusters/fleet.py;
docs/rules/fleet.md, "Maintenance windows")."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters import fleet, tasks
from clusters.choices import (
    MaintenanceCategory,
    MaintenanceKind,
    MaintenanceScope,
    MaintenanceStatus,
    NodeStatus,
    Severity,
)
from clusters.models import MaintenanceWindow, Node
from common.models import DomainEvent
from tests.factories.clusters import ClusterFactory, SiteFactory, cluster_with_nodes

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
KINDS = [fleet.FleetEvent.MAINTENANCE_SCHEDULED, fleet.FleetEvent.MAINTENANCE_CHANGED]


@pytest.fixture
def seen(event_consumer):
    """The maintenance events written so far (a consumer wants them, so each write records
    its events in its own transaction), oldest first."""
    event_consumer(KINDS)
    return lambda: list(DomainEvent.objects.filter(kind__in=KINDS).order_by("pk"))


def make(**kwargs):
    fields = {
        "title": "Firmware roll-out",
        "scope": MaintenanceScope.CLUSTER,
        "category": MaintenanceCategory.FIRMWARE,
        "kind": MaintenanceKind.PLANNED,
        "starts_at": T0 + 10 * DAY,
        "ends_at": T0 + 10 * DAY + 8 * HOUR,
        "now": T0,
    }
    fields.update(kwargs)
    return fleet.window_create(**fields)


def statuses(cluster):
    return set(cluster.nodes.values_list("status", flat=True))


def test_a_window_is_announced_runs_and_ends_with_its_nodes(
    event_consumer, django_capture_on_commit_callbacks
):
    seen = event_consumer(KINDS)
    cluster = cluster_with_nodes(3)
    other = cluster_with_nodes(2)
    with django_capture_on_commit_callbacks(execute=True):
        window = make(cluster=cluster)
    assert window.status == MaintenanceStatus.SCHEDULED
    assert window.announced_at == T0
    assert fleet.counts_as_planned(window)
    assert statuses(cluster) == {NodeStatus.ACTIVE}
    start, end = window.starts_at, window.ends_at
    with django_capture_on_commit_callbacks(execute=True):
        assert fleet.windows_advance(now=start - dt.timedelta(seconds=1)) == {}
        assert fleet.windows_advance(now=start) == {MaintenanceStatus.IN_PROGRESS: 1}
    window.refresh_from_db()
    assert window.status == MaintenanceStatus.IN_PROGRESS
    assert statuses(cluster) == {NodeStatus.MAINTENANCE}
    assert set(cluster.nodes.values_list("status_changed_at", flat=True)) == {start}
    assert statuses(other) == {NodeStatus.ACTIVE}
    with django_capture_on_commit_callbacks(execute=True):
        assert fleet.windows_advance(now=end) == {MaintenanceStatus.DONE: 1}
    window.refresh_from_db()
    assert window.status == MaintenanceStatus.DONE
    assert statuses(cluster) == {NodeStatus.ACTIVE}
    assert [(e.kind, e.payload["status"]) for e in seen] == [
        ("maintenance.scheduled", "scheduled"),
        ("maintenance.changed", "in_progress"),
        ("maintenance.changed", "done"),
    ]
    assert seen[0].subject == "maintenance_window"
    assert seen[0].payload == {
        "window": window.pk,
        "title": "Firmware roll-out",
        "scope": "cluster",
        "kind": "planned",
        "category": "firmware",
        "status": "scheduled",
        "announced_at": T0.isoformat(),
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
    }


def test_the_job_twice_is_the_job_once(event_consumer, django_capture_on_commit_callbacks):
    seen = event_consumer(KINDS)
    cluster = cluster_with_nodes(2)
    running = make(cluster=cluster, starts_at=T0 + DAY, ends_at=T0 + 3 * DAY)
    past = make(
        scope=MaintenanceScope.NODES,
        nodes=[cluster_with_nodes(1).nodes.get()],
        starts_at=T0 + HOUR,
        ends_at=T0 + 2 * HOUR,
    )
    at = T0 + 2 * DAY  # the job missed every run until now: it catches up
    with django_capture_on_commit_callbacks(execute=True):
        first = fleet.windows_advance(now=at)
        second = tasks.advance_maintenance_windows(now=at.isoformat())
    assert first == {MaintenanceStatus.IN_PROGRESS: 1, MaintenanceStatus.DONE: 1}
    assert second == {}
    running.refresh_from_db()
    past.refresh_from_db()
    assert (running.status, past.status) == ("in_progress", "done")
    assert statuses(cluster) == {NodeStatus.MAINTENANCE}
    assert [e.payload["status"] for e in seen if e.kind == "maintenance.changed"] == [
        "done",  # the past one went straight to done, its start first
        "in_progress",
    ]


def test_a_window_started_at_creation_takes_its_nodes_at_once(seen):
    site = SiteFactory()
    a = cluster_with_nodes(2, site=site)
    b = cluster_with_nodes(1, site=site)
    window = make(
        scope=MaintenanceScope.SITE,
        site=site,
        kind=MaintenanceKind.EMERGENCY,
        starts_at=T0,
        ends_at=T0 + 4 * HOUR,
    )
    assert window.status == MaintenanceStatus.IN_PROGRESS
    assert statuses(a) | statuses(b) == {NodeStatus.MAINTENANCE}
    assert not fleet.counts_as_planned(window)
    assert [e.kind for e in seen()] == ["maintenance.scheduled", "maintenance.changed"]


def test_planned_means_announced_seven_days_ahead():
    cluster = cluster_with_nodes(1)
    exactly = make(cluster=cluster, starts_at=T0 + 7 * DAY, ends_at=T0 + 7 * DAY + HOUR)
    late = make(
        cluster=cluster, starts_at=T0 + 7 * DAY - dt.timedelta(seconds=1), ends_at=T0 + 8 * DAY
    )
    early_emergency = make(cluster=cluster, kind=MaintenanceKind.EMERGENCY)
    assert fleet.counts_as_planned(exactly)
    assert not fleet.counts_as_planned(late)
    assert not fleet.counts_as_planned(early_emergency)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"starts_at": dt.datetime(2026, 11, 13, 8, 0)}, "starts_at"),  # naive
        ({"ends_at": dt.datetime(2026, 11, 13, 9, 0)}, "ends_at"),
        ({"announced_at": dt.datetime(2026, 11, 1)}, "announced_at"),
        ({"now": dt.datetime(2026, 11, 3)}, "now"),
        ({"ends_at": T0 + 10 * DAY}, "ends_at"),  # end = start
        ({"ends_at": T0 + 9 * DAY}, "ends_at"),  # end before start
        ({"scope": MaintenanceScope.NODES, "nodes": []}, "nodes"),
        ({"scope": MaintenanceScope.CLUSTER}, "cluster"),
        ({"scope": MaintenanceScope.SITE}, "site"),
        ({"scope": "rack"}, "scope"),
        ({"kind": "routine"}, "kind"),
        ({"category": "vibes"}, "category"),
        ({"title": "  "}, "title"),
        ({"announced_at": T0 + HOUR}, "announced_at"),  # announced later than recorded
        (
            {
                "starts_at": T0 - 3 * DAY,
                "ends_at": T0 - 2 * DAY,
                "announced_at": T0 - DAY,
            },
            "announced_at",  # announced after it ended
        ),
    ],
)
def test_a_bad_window_is_refused_and_writes_nothing(seen, changes, field):
    cluster = cluster_with_nodes(1)
    fields = {"cluster": cluster, **changes}
    if fields.get("scope") in (MaintenanceScope.NODES, MaintenanceScope.SITE):
        fields.pop("cluster")
    if fields.get("scope") == MaintenanceScope.CLUSTER:
        fields.pop("cluster")
    with pytest.raises(fleet.InvalidWindow) as refused:
        make(**fields)
    assert refused.value.code == "invalid_maintenance_window"
    assert refused.value.extra["field"] == field
    assert not MaintenanceWindow.objects.exists()
    assert seen() == []


def test_changing_a_window_moves_it_and_its_nodes(seen):
    old = cluster_with_nodes(2)
    new = cluster_with_nodes(2)
    window = make(cluster=old, starts_at=T0 + HOUR, ends_at=T0 + 5 * HOUR)
    fleet.windows_advance(now=T0 + 2 * HOUR)
    assert statuses(old) == {NodeStatus.MAINTENANCE}
    # Started: only the end may move.
    with pytest.raises(fleet.WindowStarted):
        fleet.window_change(window=window, now=T0 + 2 * HOUR, scope="cluster", cluster=new)
    with pytest.raises(fleet.WindowStarted):
        fleet.window_change(window=window, now=T0 + 2 * HOUR, starts_at=T0 + 3 * HOUR)
    window = fleet.window_change(window=window, now=T0 + 2 * HOUR, ends_at=T0 + 3 * HOUR)
    assert window.status == MaintenanceStatus.IN_PROGRESS
    # Shortened to the past: done at once, nodes back.
    window = fleet.window_change(window=window, now=T0 + 4 * HOUR, ends_at=T0 + 4 * HOUR)
    assert window.status == MaintenanceStatus.DONE
    assert statuses(old) == {NodeStatus.ACTIVE}
    with pytest.raises(fleet.WindowClosed):
        fleet.window_change(window=window, now=T0 + 5 * HOUR, ends_at=T0 + 6 * HOUR)
    # A scheduled window may change scope; the nodes left behind and taken are refreshed.
    later = make(cluster=old, starts_at=T0 + DAY, ends_at=T0 + 2 * DAY)
    later = fleet.window_change(
        window=later, now=T0 + 5 * HOUR, scope=MaintenanceScope.NODES, nodes=new.nodes.all()
    )
    assert later.cluster_id is None
    assert set(fleet.window_nodes(later)) == set(new.nodes.all())
    assert [e.payload["status"] for e in seen()][-1] == "scheduled"


def test_moving_a_window_earlier_reannounces_it_later_keeps_its_notice():
    window = make(cluster=cluster_with_nodes(1))
    moved_later = fleet.window_change(
        window=window, now=T0 + DAY, starts_at=T0 + 12 * DAY, ends_at=T0 + 12 * DAY + HOUR
    )
    assert moved_later.announced_at == T0
    assert fleet.counts_as_planned(moved_later)
    moved_earlier = fleet.window_change(
        window=window, now=T0 + 2 * DAY, starts_at=T0 + 5 * DAY, ends_at=T0 + 5 * DAY + HOUR
    )
    assert moved_earlier.announced_at == T0 + 2 * DAY
    assert not fleet.counts_as_planned(moved_earlier)


def test_cancel_a_scheduled_window_or_end_a_running_one(seen):
    cluster = cluster_with_nodes(2)
    scheduled = make(cluster=cluster)
    scheduled = fleet.window_cancel(window=scheduled, now=T0 + HOUR, note="vendor slipped")
    assert scheduled.status == MaintenanceStatus.CANCELLED
    assert "vendor slipped" in scheduled.description
    assert fleet.windows_advance(now=T0 + 30 * DAY) == {}  # cancelled stays cancelled
    running = make(cluster=cluster, starts_at=T0, ends_at=T0 + DAY, kind="emergency")
    assert statuses(cluster) == {NodeStatus.MAINTENANCE}
    running = fleet.window_cancel(window=running, now=T0 + 2 * HOUR)
    assert (running.status, running.ends_at) == (MaintenanceStatus.DONE, T0 + 2 * HOUR)
    assert statuses(cluster) == {NodeStatus.ACTIVE}
    with pytest.raises(fleet.WindowClosed):
        fleet.window_cancel(window=running, now=T0 + 3 * HOUR)
    assert [e.payload["status"] for e in seen() if e.kind == "maintenance.changed"] == [
        "cancelled",
        "in_progress",
        "done",
    ]


def test_an_incident_outlives_the_window():
    cluster = cluster_with_nodes(2)
    a, b = cluster.nodes.order_by("pk")
    window = make(cluster=cluster, starts_at=T0, ends_at=T0 + HOUR)
    fleet.incident_open(
        node=a, category="gpu", source="operator", now=T0 + HOUR / 2, severity="down"
    )
    fleet.incident_open(
        node=b, category="gpu", source="operator", now=T0, severity=Severity.DEGRADED
    )
    fleet.windows_advance(now=T0 + HOUR)
    window.refresh_from_db()
    assert window.status == MaintenanceStatus.DONE
    assert dict(cluster.nodes.values_list("pk", "status")) == {
        a.pk: NodeStatus.DOWN,
        b.pk: NodeStatus.DEGRADED,
    }


def test_a_campus_window_refreshes_every_node_in_few_queries():
    site = SiteFactory()
    for _ in range(3):
        ClusterFactory(site=site)
    clusters = list(site.clusters.all())
    Node.objects.bulk_create(
        Node(cluster=clusters[i % 3], hostname=f"big-{i:05d}") for i in range(4500)
    )
    window = make(scope=MaintenanceScope.SITE, site=site, starts_at=T0 + HOUR, ends_at=T0 + DAY)
    with CaptureQueriesContext(connection) as queries:
        fleet.windows_advance(now=T0 + HOUR)
    assert Node.objects.filter(status=NodeStatus.MAINTENANCE).count() == 4500
    assert len(queries) < 40, len(queries)
    window.refresh_from_db()
    assert window.status == MaintenanceStatus.IN_PROGRESS
