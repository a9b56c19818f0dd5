"""Who a window touches, deferral requests and decisions (leasing/maintenance.py), and the
holdings behind the guarded inventory (clusters/guards.py)."""

import datetime as dt

import pytest

from clusters import fleet, guards
from clusters.choices import MaintenanceScope, MaintenanceStatus
from common.exceptions import NotFound
from common.models import DomainEvent
from leasing import maintenance
from leasing.choices import DeferralStatus
from leasing.models import MaintenanceDeferral
from tests.factories.clusters import cluster_with_nodes

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def window(**kwargs):
    fields = {
        "title": "Firmware",
        "category": "firmware",
        "kind": "planned",
        "starts_at": NOW + 10 * DAY,
        "ends_at": NOW + 10 * DAY + 6 * HOUR,
        "now": NOW,
    }
    fields.update(kwargs)
    return fleet.window_create(**fields)


def test_a_window_touches_the_tenants_holding_its_nodes_during_it(fleet_world):
    w = fleet_world
    whole = window(scope=MaintenanceScope.CLUSTER, cluster=w["cluster"])
    only_b = window(scope=MaintenanceScope.NODES, nodes=w["nodes_b"][:2] + w["free"])
    free_only = window(scope=MaintenanceScope.NODES, nodes=w["free"])
    after_term = window(
        scope=MaintenanceScope.CLUSTER,
        cluster=w["cluster"],
        starts_at=dt.datetime(2026, 7, 2, tzinfo=dt.UTC),
        ends_at=dt.datetime(2026, 7, 3, tzinfo=dt.UTC),
    )
    elsewhere = window(scope=MaintenanceScope.CLUSTER, cluster=cluster_with_nodes(2))
    assert set(maintenance.window_tenants(whole, now=NOW)) == {w["a"], w["b"]}
    assert set(maintenance.window_tenants(only_b, now=NOW)) == {w["b"]}
    assert not maintenance.window_tenants(free_only, now=NOW).exists()
    assert not maintenance.window_tenants(after_term, now=NOW).exists()
    seen_by_a = {x.pk: x.affected_nodes for x in maintenance.windows_for_tenant(w["a"], now=NOW)}
    seen_by_b = {x.pk: x.affected_nodes for x in maintenance.windows_for_tenant(w["b"], now=NOW)}
    assert seen_by_a == {whole.pk: 4}
    assert seen_by_b == {whole.pk: 3, only_b.pk: 2}
    assert elsewhere.pk not in seen_by_a


def test_a_granted_deferral_moves_the_window_by_the_same_shift(fleet_world, event_consumer):
    event_consumer(["maintenance.changed"])
    w = fleet_world
    win = window(scope=MaintenanceScope.CLUSTER, cluster=w["cluster"])
    asked = maintenance.deferral_request(
        window=win, tenant=w["a"], requested_start=win.starts_at + 3 * DAY, reason="run", now=NOW
    )
    assert asked.status == DeferralStatus.REQUESTED
    with pytest.raises(maintenance.DeferralAlreadyRequested):
        maintenance.deferral_request(
            window=win, tenant=w["a"], requested_start=win.starts_at + DAY, now=NOW
        )
    # Lab B may ask too: one open request per window and tenant.
    maintenance.deferral_request(
        window=win, tenant=w["b"], requested_start=win.starts_at + DAY, now=NOW
    )
    granted = maintenance.deferral_grant(deferral=asked, actor=w["operator"], now=NOW + HOUR)
    assert (granted.status, granted.decided_by, granted.decided_at) == (
        DeferralStatus.GRANTED,
        w["operator"],
        NOW + HOUR,
    )
    win.refresh_from_db()
    assert win.starts_at == NOW + 13 * DAY
    assert win.ends_at == NOW + 13 * DAY + 6 * HOUR
    assert win.announced_at == NOW  # moved later: still planned
    assert fleet.counts_as_planned(win)
    changed = DomainEvent.objects.get(kind="maintenance.changed")
    assert changed.payload["starts_at"] == win.starts_at.isoformat()
    with pytest.raises(maintenance.DeferralDecided):
        maintenance.deferral_grant(deferral=asked, actor=w["operator"], now=NOW + 2 * HOUR)
    # B's request asked less than the window now gives: granted without moving it.
    b_request = MaintenanceDeferral.objects.get(tenant=w["b"])
    maintenance.deferral_grant(deferral=b_request, actor=w["operator"], now=NOW + 2 * HOUR)
    win.refresh_from_db()
    assert win.starts_at == NOW + 13 * DAY


def test_a_denied_deferral_says_why_and_moves_nothing(fleet_world):
    w = fleet_world
    win = window(scope=MaintenanceScope.CLUSTER, cluster=w["cluster"])
    asked = maintenance.deferral_request(
        window=win, tenant=w["a"], requested_start=win.starts_at + DAY, now=NOW
    )
    with pytest.raises(maintenance.InvalidDeferral):
        maintenance.deferral_deny(deferral=asked, actor=w["operator"], note=" ", now=NOW)
    denied = maintenance.deferral_deny(
        deferral=asked, actor=w["operator"], note="vendor on site that day", now=NOW + HOUR
    )
    assert (denied.status, denied.decision_note) == (
        DeferralStatus.DENIED,
        "vendor on site that day",
    )
    assert denied.decided_by == w["operator"]
    win.refresh_from_db()
    assert win.starts_at == NOW + 10 * DAY
    # Decided: the tenant may ask again.
    maintenance.deferral_request(
        window=win, tenant=w["a"], requested_start=win.starts_at + 2 * DAY, now=NOW + 2 * HOUR
    )


@pytest.mark.parametrize(
    ("requested", "error", "field"),
    [
        (dt.datetime(2026, 3, 20), maintenance.InvalidDeferral, "requested_start"),  # naive
        (NOW + 10 * DAY, maintenance.InvalidDeferral, "requested_start"),  # = start
        (NOW + 9 * DAY, maintenance.InvalidDeferral, "requested_start"),  # earlier
    ],
)
def test_a_bad_deferral_is_refused_and_writes_nothing(fleet_world, requested, error, field):
    w = fleet_world
    win = window(scope=MaintenanceScope.CLUSTER, cluster=w["cluster"])
    with pytest.raises(error) as refused:
        maintenance.deferral_request(window=win, tenant=w["a"], requested_start=requested, now=NOW)
    assert refused.value.extra["field"] == field
    assert not MaintenanceDeferral.objects.exists()


def test_only_a_scheduled_window_touching_the_tenant_may_be_deferred(fleet_world):
    w = fleet_world
    not_mine = window(scope=MaintenanceScope.NODES, nodes=w["nodes_b"])
    with pytest.raises(NotFound):
        maintenance.deferral_request(
            window=not_mine, tenant=w["a"], requested_start=NOW + 20 * DAY, now=NOW
        )
    running = window(
        scope=MaintenanceScope.CLUSTER,
        cluster=w["cluster"],
        kind="emergency",
        starts_at=NOW,
        ends_at=NOW + HOUR,
    )
    assert running.status == MaintenanceStatus.IN_PROGRESS
    with pytest.raises(maintenance.DeferralNotAllowed):
        maintenance.deferral_request(
            window=running, tenant=w["a"], requested_start=NOW + DAY, now=NOW
        )
    assert not MaintenanceDeferral.objects.exists()


def test_the_guards_see_who_holds_a_node_now_or_later(fleet_world):
    w = fleet_world
    ids = [n.pk for n in w["nodes_a"] + w["nodes_b"] + w["free"]]
    before_commencement = dt.datetime(2025, 12, 15, tzinfo=dt.UTC)
    held = guards.held_node_ids(ids, now=before_commencement)  # scheduled leases hold too
    assert held == {n.pk for n in w["nodes_a"] + w["nodes_b"]}
    impact = guards.impact(guards.holdings(ids, now=NOW))
    assert {(r.lease_number, r.tenant, len(r.nodes)) for r in impact} == {
        (w["lease_a"].number, "Lab A", 4),
        (w["lease_b"].number, "Lab B", 3),
    }
    rents = {r.tenant: r.monthly_rent for r in impact}
    assert rents == {
        "Lab A": w["lease_a"].lines.get().monthly_rate,
        "Lab B": w["lease_b"].lines.get().monthly_rate,
    }
    after_term = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    # After the term, until the release is confirmed, the nodes stay held (holdover rule).
    assert guards.held_node_ids(ids, now=after_term) == held
