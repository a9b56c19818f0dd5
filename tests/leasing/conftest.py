"""Fixtures for leasing tests: a small cluster, a tenant, a listing, clocks."""

import datetime as dt

import pytest

from leasing import services
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory, published_listing

UTC = dt.UTC


def at(*args) -> dt.datetime:
    """An aware UTC instant."""
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def cluster(db):
    return cluster_with_nodes(20)


@pytest.fixture
def tenant(db):
    return TenantFactory()


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


@pytest.fixture
def listing(cluster):
    return published_listing(cluster)


@pytest.fixture
def make_lease(tenant, listing, operator):
    """Request and approve a lease of `nodes` nodes from the listing (UTC, 180/90)."""

    def make(
        nodes=10,
        commencement=dt.date(2026, 1, 1),
        approve_at=None,
        requested_at=None,
        tenant_=None,
        listing_=None,
    ):
        requested_at = requested_at or at(2025, 12, 1)
        lease = services.lease_request(
            tenant=tenant_ or tenant,
            listing=listing_ or listing,
            node_count=nodes,
            commencement_date=commencement,
            now=requested_at,
        )
        return services.lease_approve(
            lease=lease, actor=operator, now=approve_at or requested_at + dt.timedelta(days=1)
        )

    return make
