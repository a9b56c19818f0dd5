"""Fixtures for reclaim tests: small leases on real clusters, a small internal workload."""

import datetime as dt
from decimal import Decimal

import pytest

from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, UserFactory

# A workload that fits 80-GPU lines (TP 8, no pipeline), so small test lines have value.
SMALL_WORKLOAD = {
    "params": 7.0e9,
    "tokens_per_step": 4 * 2**20,
    "tensor_parallel": 8,
    "pipeline_parallel": 1,
    "microbatches": 1,
    "pipeline_interleave": 1,
}
CHEAP = Decimal("1000.00")
DEAR = Decimal("50000000.00")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def make_lease(
    rates=(CHEAP,),
    *,
    commencement_date=dt.date(2026, 1, 1),
    notice_days=90,
    nodes=10,
    status="active",
    site=None,
):
    """An ACTIVE UTC lease (180 days) with one line per rate, each on its own H100 cluster of
    `nodes` free nodes (8 GPUs each), so notices can fit allocations."""
    lease = LeaseFactory(
        commencement_date=commencement_date, notice_days=notice_days, status=status
    )
    lines = []
    for rate in rates:
        extra = {"site": site} if site is not None else {}
        cluster = cluster_with_nodes(nodes, **extra)
        lines.append(
            LeaseLineFactory(lease=lease, cluster=cluster, node_count=nodes, monthly_rate=rate)
        )
    return lease, lines


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)
