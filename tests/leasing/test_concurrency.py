"""Races between real processes on PostgreSQL: no overcommit, boundaries applied once.

Each worker is a separate interpreter with its own connection to the test database
(`tests/leasing/workers.py`), so these are true concurrent transactions, not threads sharing
one connection. A control proves the overlap check can fail: without the service's lock and
without the exclusion constraint, the same race does overcommit.
"""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from leasing import boundaries, notices, services
from leasing.choices import LeaseStatus
from leasing.models import Allocation, Lease, LeaseEvent
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing
from tests.processes import run_together

from .conftest import at

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),  # the catalog is restored by tests/conftest.py
]

WORKERS = 10
NODES = 20
PER_LEASE = 5  # 10 requests × 5 nodes for 20 nodes: exactly 4 can win


def run_workers(commands: list[list[str]]) -> list[dict]:
    return run_together("tests.leasing.workers", commands)


def overlapping_pairs() -> int:
    """Pairs of allocations of the same node whose periods overlap (must be zero)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM leasing_allocation a JOIN leasing_allocation b "
            "ON a.node_id = b.node_id AND a.id < b.id "
            "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
        )
        return cursor.fetchone()[0]


def drafts(count: int) -> list[Lease]:
    cluster = cluster_with_nodes(NODES)
    listing = published_listing(cluster)
    return [
        services.lease_request(
            tenant=TenantFactory(),
            listing=listing,
            node_count=PER_LEASE,
            # Different starts, all overlapping: every pair competes for the same instants.
            commencement_date=dt.date(2026, 1, 1) + dt.timedelta(days=i),
            now=at(2025, 12, 1),
        )
        for i in range(count)
    ]


def test_concurrent_approvals_never_overcommit():
    leases = drafts(WORKERS)
    results = run_together(
        "tests.leasing.workers", [["approve", str(lease.pk)] for lease in leases]
    )
    winners = [r for r in results if r["ok"]]
    losers = [r for r in results if not r["ok"]]
    assert len(winners) == NODES // PER_LEASE
    assert {r["code"] for r in losers} == {"capacity_unavailable"}
    assert len(losers) == WORKERS - len(winners)
    assert overlapping_pairs() == 0
    assert Allocation.objects.count() == NODES
    assert Lease.objects.filter(status=LeaseStatus.SCHEDULED).count() == len(winners)
    # Losers wrote nothing: still drafts, no allocation, no approval event.
    assert Lease.objects.filter(status=LeaseStatus.DRAFT).count() == len(losers)
    assert LeaseEvent.objects.filter(kind="lease.approved").count() == len(winners)


def test_control_the_exclusion_constraint_rejects_a_raw_overlap():
    (lease,) = drafts(1)
    services.lease_approve(lease=lease, now=at(2025, 12, 2))
    held = Allocation.objects.first()
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Allocation.objects.create(
            line=held.line,
            node=held.node,
            starts_at=held.ends_at - dt.timedelta(hours=1),
            ends_at=held.ends_at + dt.timedelta(days=1),
        )
    assert exc.value.__cause__.sqlstate == "23P01"
    # Touching ranges are not an overlap.
    Allocation.objects.create(
        line=held.line,
        node=held.node,
        starts_at=held.ends_at,
        ends_at=held.ends_at + dt.timedelta(days=1),
    )


def test_control_without_lock_and_constraint_the_same_race_overcommits():
    leases = drafts(WORKERS)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE leasing_allocation DROP CONSTRAINT allocation_node_no_overlap")
    try:
        results = run_together(
            "tests.leasing.workers", [["approve_unlocked", str(lease.pk)] for lease in leases]
        )
        assert sum(r["ok"] for r in results) > NODES // PER_LEASE
        assert overlapping_pairs() > 0  # the checker above does see an overcommit
    finally:
        Allocation.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE leasing_allocation ADD CONSTRAINT allocation_node_no_overlap "
                "EXCLUDE USING gist (node_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)"
            )


def boundary_fixture(count: int) -> None:
    """`count` leases, each with every kind of boundary due by 2026-07-05."""
    cluster = cluster_with_nodes(count)
    listing = published_listing(cluster)
    for i in range(count):
        lease = services.lease_request(
            tenant=TenantFactory(),
            listing=listing,
            node_count=1,
            commencement_date=dt.date(2026, 1, 1),
            now=at(2025, 12, 1),
        )
        services.lease_approve(lease=lease, now=at(2025, 12, 2))
        if i % 2:
            notices.notice_give(lease=lease, party="tenant", now=at(2026, 2, 1))


def end_state() -> list:
    return list(
        Lease.objects.order_by("number").values_list(
            "number", "status", "effective_end", "released_at"
        )
    )


def test_boundary_job_concurrent_runs_apply_each_boundary_once():
    boundary_fixture(12)
    # What one run alone would leave (computed in a transaction that is rolled back).
    with transaction.atomic():
        boundaries.process_boundaries(now=at(2026, 7, 5))
        expected = end_state()
        transaction.set_rollback(True)
    results = run_together(
        "tests.leasing.workers", [["boundaries", "2026-07-05T00:00:00+00:00"]] * 4
    )
    assert all(r["ok"] for r in results)
    assert end_state() == expected
    assert set(Lease.objects.values_list("status", flat=True)) == {"holdover"}
    kinds = list(LeaseEvent.objects.values_list("kind", flat=True))
    assert kinds.count("lease.activated") == 12
    assert kinds.count("lease.expired") == 6
    assert kinds.count("lease.terminated") == 6
    assert kinds.count("notice.effective") == 6
    assert kinds.count("lease.holdover") == 12
    # A further run has nothing to do.
    assert boundaries.process_boundaries(now=at(2026, 7, 5)) == {}
