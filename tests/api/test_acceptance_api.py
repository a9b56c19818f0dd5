"""The tenant API of hand-over: acceptance records and the nodes of a lease."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters import acceptance as th
from clusters import fleet
from clusters.choices import (
    MaintenanceCategory,
    MaintenanceKind,
    MaintenanceScope,
    MaintenanceStatus,
)
from clusters.models import MaintenanceWindow
from leasing import acceptance
from leasing.models import Allocation
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory

pytestmark = pytest.mark.django_db


def _lease(tenant, nodes: int):
    """A lease of `tenant` running now, holding `nodes` nodes of a fresh cluster."""
    today = timezone.now().date()
    cluster = cluster_with_nodes(nodes)
    lease = LeaseFactory(tenant=tenant, commencement_date=today - dt.timedelta(days=10))
    line = LeaseLineFactory(
        lease=lease, cluster=cluster, node_count=nodes, monthly_rate=Decimal("100000.00")
    )
    held = list(cluster.nodes.order_by("hostname"))
    Allocation.objects.bulk_create(
        Allocation(line=line, node=n, starts_at=lease.commencement, ends_at=lease.term_end)
        for n in held
    )
    return lease, line, held


def _tests(line, ok: bool):
    t = th.thresholds_for(line.cluster, nodes=line.node_count)
    return [
        {"name": th.TEST_BUSBW, "measured": t.predicted_busbw_gbytes_per_s * (1.0 if ok else 0.5)},
        {"name": th.TEST_STEP, "measured": t.predicted_step_s},
    ]


@pytest.fixture
def handed_over(tenant_a):
    """Tenant A's lease of 4 nodes: one accepted, one failed (incident), one in a window, one
    pending."""
    lease, line, (a, b, c, d) = _lease(tenant_a, 4)
    now = timezone.now()
    signed = now - dt.timedelta(days=2)
    good = acceptance.acceptance_record(
        line=line,
        node=a,
        tests=_tests(line, True),
        signed_at=signed,
        signed_by=None,
        batch="rack-1",
    )
    bad = acceptance.acceptance_record(
        line=line,
        node=b,
        tests=_tests(line, False),
        signed_at=signed,
        signed_by=None,
        batch="rack-1",
    )
    window = MaintenanceWindow.objects.create(
        title="Firmware",
        scope=MaintenanceScope.NODES,
        category=MaintenanceCategory.FIRMWARE,
        kind=MaintenanceKind.PLANNED,
        status=MaintenanceStatus.SCHEDULED,
        announced_at=now - dt.timedelta(days=8),
        starts_at=now + dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=1, hours=4),
    )
    window.nodes.add(c)
    return {
        "lease": lease,
        "line": line,
        "nodes": (a, b, c, d),
        "good": good,
        "bad": bad,
        "window": window,
    }


def test_records_list_detail_and_filters(handed_over, api_a):
    body = api_a.get("/api/v1/acceptance-records/").json()
    rows = body["results"]
    assert {r["id"] for r in rows} == {handed_over["good"].pk, handed_over["bad"].pk}
    good = next(r for r in rows if r["id"] == handed_over["good"].pk)
    assert good["lease"] == handed_over["lease"].pk
    assert good["lease_number"] == handed_over["lease"].number
    assert good["hostname"] == handed_over["nodes"][0].hostname
    assert good["passed"] is True
    assert good["batch"] == "rack-1"
    assert good["incident"] is None
    assert "raw" not in good
    busbw = good["tests"][0]
    assert busbw["name"] == "nccl_all_reduce_busbw"
    assert busbw["unit"] == "GB/s"
    assert busbw["rule"] == ">="
    assert busbw["threshold"] == pytest.approx(0.9 * busbw["predicted"])
    bad = api_a.get(f"/api/v1/acceptance-records/{handed_over['bad'].pk}/").json()
    assert bad["passed"] is False
    assert bad["incident"] == handed_over["bad"].incident_id
    assert bad["raw"] == ""

    node_b = handed_over["nodes"][1].pk
    only_b = api_a.get("/api/v1/acceptance-records/", {"node": node_b}).json()["results"]
    assert [r["id"] for r in only_b] == [handed_over["bad"].pk]
    by_lease = api_a.get("/api/v1/acceptance-records/", {"lease": handed_over["lease"].pk})
    assert len(by_lease.json()["results"]) == 2
    assert api_a.get("/api/v1/acceptance-records/", {"lease": 999999}).json()["results"] == []
    for bad_query in ({"lease": "x"}, {"node": "-1"}, {"lease": "1.0"}, {"hostname": "a"}):
        response = api_a.get("/api/v1/acceptance-records/", bad_query)
        assert response.status_code == 400, bad_query
        assert response.json()["code"] == "validation_error"
        assert set(response.json()["extra"]["fields"]) == set(bad_query)


def test_the_nodes_of_a_lease(handed_over, api_a):
    a, b, c, d = handed_over["nodes"]
    response = api_a.get(f"/api/v1/leases/{handed_over['lease'].pk}/nodes/")
    assert response.status_code == 200
    rows = {r["hostname"]: r for r in response.json()["results"]}
    assert set(rows) == {a.hostname, b.hostname, c.hostname, d.hostname}
    ra, rb, rc, rd = (rows[n.hostname] for n in (a, b, c, d))
    assert ra["health"] == "ok"
    assert ra["acceptance"]["status"] == "accepted"
    assert ra["acceptance"]["record"] == handed_over["good"].pk
    assert ra["acceptance"]["at"] == handed_over["good"].signed_at.isoformat().replace(
        "+00:00", "Z"
    )
    assert ra["open_incident"] is None
    assert ra["cluster"] == handed_over["line"].cluster.slug
    # The failed node: degraded, failed, its incident open.
    assert rb["health"] == "degraded"
    assert rb["acceptance"]["status"] == "failed"
    incident = handed_over["bad"].incident
    assert rb["open_incident"] == {
        "id": incident.pk,
        "category": "performance",
        "opened_at": incident.opened_at.isoformat().replace("+00:00", "Z"),
    }
    # The node in a scheduled window; the last one pending with nothing to say.
    assert rc["next_maintenance"]["id"] == handed_over["window"].pk
    assert rc["acceptance"] == {"status": "pending", "at": None, "record": None}
    assert rd["next_maintenance"] is None
    assert rd["open_incident"] is None


def test_a_cluster_window_in_progress_shows_as_maintenance(handed_over, api_a):
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        title="Cooling",
        scope=MaintenanceScope.CLUSTER,
        cluster=handed_over["line"].cluster,
        category=MaintenanceCategory.COOLING,
        kind=MaintenanceKind.EMERGENCY,
        status=MaintenanceStatus.IN_PROGRESS,
        announced_at=now - dt.timedelta(hours=1),
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=3),
    )
    fleet.node_refresh_status(node_ids=[n.pk for n in handed_over["nodes"]], now=now)
    rows = api_a.get(f"/api/v1/leases/{handed_over['lease'].pk}/nodes/").json()["results"]
    by_host = {r["hostname"]: r for r in rows}
    a, _b, c, _d = handed_over["nodes"]
    assert by_host[a.hostname]["health"] == "maintenance"
    assert by_host[a.hostname]["next_maintenance"]["id"] == window.pk
    # The node-scoped window starts later: the one in progress comes first.
    assert by_host[c.hostname]["next_maintenance"]["id"] == window.pk


def test_node_pages_cost_the_same_queries_whatever_their_size(tenant_a, api_a):
    small, _, _ = _lease(tenant_a, 2)
    big, big_line, big_nodes = _lease(tenant_a, 30)
    now = timezone.now()
    for node in big_nodes[:10]:
        acceptance.acceptance_record(
            line=big_line,
            node=node,
            tests=_tests(big_line, node.pk % 2 == 0),
            signed_at=now - dt.timedelta(hours=1),
            signed_by=None,
        )
    for lease in (small, big):
        api_a.get(f"/api/v1/leases/{lease.pk}/nodes/")  # warm caches (key lookup, etc.)
    counts = []
    for lease in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            response = api_a.get(f"/api/v1/leases/{lease.pk}/nodes/")
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert len(response.json()["results"]) == 30
    assert counts[0] == counts[1], counts


def test_node_list_query_string_is_strict(handed_over, api_a):
    path = f"/api/v1/leases/{handed_over['lease'].pk}/nodes/"
    assert api_a.get(path, {"page_size": "2"}).status_code == 200
    page = api_a.get(path, {"page_size": "2"}).json()
    assert len(page["results"]) == 2
    assert page["next"]
    rest = api_a.get(page["next"]).json()["results"]
    assert len(rest) == 2
    for bad in ({"status": "ok"}, {"page_size": "0"}, {"cursor": "garbage"}):
        response = api_a.get(path, bad)
        assert response.status_code == 400, bad
    assert api_a.get("/api/v1/leases/999999/nodes/").status_code == 404
