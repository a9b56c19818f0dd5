"""Fixtures of the fleet tests: two tenants holding nodes of one cluster through real leases."""

import datetime as dt

import pytest

from leasing import services
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory, published_listing

REQUESTED = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)


def lease_of(tenant, cluster, nodes, *, commencement=dt.date(2026, 1, 1), operator=None):
    """A lease of `nodes` nodes of `cluster` approved through the services (180 days, UTC)."""
    listing = published_listing(cluster, node_count=nodes)
    lease = services.lease_request(
        tenant=tenant,
        listing=listing,
        node_count=nodes,
        commencement_date=commencement,
        now=REQUESTED,
    )
    return services.lease_approve(lease=lease, actor=operator, now=REQUESTED + dt.timedelta(1))


@pytest.fixture
def fleet_world(db):
    """Cluster of 10 nodes: 4 held by lab A, 3 by lab B (both from 2026-01-01), 3 free."""
    cluster = cluster_with_nodes(10)
    operator = UserFactory(username="fleet-operator", is_staff=True, is_superuser=True)
    a, b = TenantFactory(name="Lab A", slug="lab-a"), TenantFactory(name="Lab B", slug="lab-b")
    lease_a = lease_of(a, cluster, 4, operator=operator)
    lease_b = lease_of(b, cluster, 3, operator=operator)
    return {
        "cluster": cluster,
        "operator": operator,
        "a": a,
        "b": b,
        "lease_a": lease_a,
        "lease_b": lease_b,
        "nodes_a": list(cluster.nodes.filter(allocations__line__lease=lease_a)),
        "nodes_b": list(cluster.nodes.filter(allocations__line__lease=lease_b)),
        "free": list(cluster.nodes.exclude(allocations__isnull=False)),
    }
