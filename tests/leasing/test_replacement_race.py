"""Replacement racing with other writers, in real processes on PostgreSQL.

Each worker is its own interpreter with its own connection (`tests/leasing/workers.py`),
and every writer pauses between reading the free nodes and writing
them, so only the locks keep the writers apart: the lease row, then the cluster rows
(docs/architecture.md, "Lock order"). Never two holders of a node; the loser gets a clear
coded error. A control proves the checker can fail: without the cluster lock (and without the
exclusion constraint) the same race gives a node two holders.
"""

import datetime as dt

import pytest
from django.db import connection

from clusters import fleet
from leasing import services
from leasing.models import Allocation, Lease, LeaseEvent, Replacement
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing
from tests.processes import run_together

from .test_concurrency import overlapping_pairs

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),  # the catalog is restored by tests/conftest.py
]

UTC = dt.UTC
SWAP = dt.datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
ROUNDS = 3  # independent clusters raced at once


def run(commands: list[list[str]]) -> list[dict]:
    return run_together("tests.leasing.workers", commands, lead_s=8.0)


def lease(cluster, nodes, commencement=dt.date(2026, 1, 1), *, approve=True, listing=None):
    drafted = services.lease_request(
        tenant=TenantFactory(),
        listing=listing or published_listing(cluster, earliest_start=dt.date(2025, 1, 1)),
        node_count=nodes,
        commencement_date=commencement,
        now=dt.datetime(2025, 6, 1, tzinfo=UTC),
    )
    if approve:
        return services.lease_approve(lease=drafted, now=dt.datetime(2025, 6, 2, tzinfo=UTC))
    return drafted


def failing(allocation):
    fleet.incident_open(
        node=allocation.node, category="gpu", source="monitoring", now=SWAP - dt.timedelta(hours=1)
    )
    return allocation


def last_spare_race():
    """Per round: a 2-node cluster, a lease on the first node (failed), a draft lease wanting
    one node over the swap: the second node is the last free one, and both want it."""
    commands = []
    for _ in range(ROUNDS):
        cluster = cluster_with_nodes(2)
        listing = published_listing(cluster, earliest_start=dt.date(2025, 1, 1))
        running = lease(cluster, 1, listing=listing)
        draft = lease(cluster, 1, dt.date(2026, 1, 15), approve=False, listing=listing)
        allocation = failing(Allocation.objects.get(line__lease=running))
        commands.append(["replace", str(allocation.pk), SWAP.isoformat()])
        commands.append(["approve_slow", str(draft.pk)])
    return commands


def test_replacement_and_approval_race_for_the_last_spare():
    commands = last_spare_race()
    results = run(commands)
    for replaced, approved in zip(results[::2], results[1::2], strict=True):
        # Exactly one of the two gets the node; the other says why, with its code.
        assert replaced["ok"] != approved["ok"], (replaced, approved)
        if replaced["ok"]:
            assert approved["code"] == "capacity_unavailable"
        else:
            assert replaced["code"] == "no_spare_available"
    assert overlapping_pairs() == 0
    won = sum(r["ok"] for r in results[::2])
    assert Replacement.objects.count() == won
    assert LeaseEvent.objects.filter(kind="node.replaced").count() == won
    assert LeaseEvent.objects.filter(kind="lease.approved").count() == 2 * ROUNDS - won


def test_control_without_the_cluster_lock_the_same_race_gives_a_node_two_holders():
    commands = [
        ["replace_unlocked", *args] if action == "replace" else [action, *args]
        for action, *args in last_spare_race()
    ]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE leasing_allocation DROP CONSTRAINT allocation_node_no_overlap")
    try:
        results = run(commands)
        assert all(r["ok"] for r in results), results  # nobody refused: both took the spare
        assert overlapping_pairs() >= ROUNDS  # and the checker above sees it
    finally:
        Replacement.objects.all().delete()
        Allocation.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE leasing_allocation ADD CONSTRAINT allocation_node_no_overlap "
                "EXCLUDE USING gist (node_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)"
            )


def test_control_without_the_cluster_lock_the_constraint_still_refuses_the_loser():
    commands = [
        ["replace_unlocked", *args] if action == "replace" else [action, *args]
        for action, *args in last_spare_race()
    ]
    results = run(commands)
    assert overlapping_pairs() == 0
    # Both read the spare as free; the second to write lost at the exclusion constraint.
    for pair in zip(results[::2], results[1::2], strict=True):
        assert sorted(r["ok"] for r in pair) == [False, True], pair
        (loser,) = [r for r in pair if not r["ok"]]
        assert loser["code"] == "capacity_unavailable"


def test_replacements_and_the_boundary_job_never_share_a_node():
    """Per round: a cluster of 4 nodes. A lease ended before the swap but never released
    keeps node 3 (the boundary job is expiring it and putting it in holdover meanwhile); a
    lease due to activate holds nodes 0 and 1, both failed; node 2 is the only spare. Two
    swaps and the boundary job run together: one swap wins node 2, the other finds no spare
    (node 3 is held past its lease's end, whatever the job has done yet), the job applies
    every boundary once."""
    commands = []
    for _ in range(ROUNDS):
        cluster = cluster_with_nodes(4)
        listing = published_listing(cluster, earliest_start=dt.date(2025, 1, 1))
        ended = lease(cluster, 1, dt.date(2025, 7, 1), listing=listing)
        nodes = list(cluster.nodes.order_by("pk"))
        Allocation.objects.filter(line__lease=ended).update(node=nodes[3])
        running = lease(cluster, 2, listing=listing)
        for allocation in Allocation.objects.filter(line__lease=running).order_by("node_id"):
            assert allocation.node_id in (nodes[0].pk, nodes[1].pk)
            commands.append(["replace", str(failing(allocation).pk), SWAP.isoformat()])
    commands.append(["boundaries", SWAP.isoformat()])
    results = run(commands)
    swaps, (job,) = results[:-1], results[-1:]
    assert job["ok"]
    for pair in zip(swaps[::2], swaps[1::2], strict=True):
        assert sorted(r["ok"] for r in pair) == [False, True], pair
        (loser,) = [r for r in pair if not r["ok"]]
        assert loser["code"] == "no_spare_available"
    assert overlapping_pairs() == 0
    spares = {r["spare"] for r in swaps if r["ok"]}
    assert len(spares) == ROUNDS
    assert not Allocation.objects.filter(
        node_id__in=spares, line__lease__status="holdover"
    ).exists()
    kinds = list(LeaseEvent.objects.values_list("kind", flat=True))
    assert kinds.count("node.replaced") == ROUNDS
    assert kinds.count("lease.activated") == 2 * ROUNDS
    assert kinds.count("lease.expired") == ROUNDS
    assert kinds.count("lease.holdover") == ROUNDS
    assert set(Lease.objects.values_list("status", flat=True)) == {"active", "holdover"}
