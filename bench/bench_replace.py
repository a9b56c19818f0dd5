"""Replacement benchmark on PostgreSQL: replace 1,000 failed nodes across 100 leases.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_replace.py

Creates a throwaway database `landlord_bench_replace`, builds 10 clusters of 300 nodes with 10
leases of 20 nodes each (100 leases, 2,000 held nodes, 1,000 spares) and an open incident on
10 nodes of every lease, then measures, each time from the same state:

1. `nodes_replace`, one call per lease (10 nodes under one lock set): the figure with the
   target, ≤ 2 s for the 1,000 nodes.
2. `nodes_replace`, one call for all 1,000 nodes of the 100 leases (one lock set: the leases
   in ascending id, then the clusters), with the same target.
3. `node_replace`, one call per node (1,000 transactions), measured once: informational,
   what the admin action costs per node.
4. The floor: a raw UPDATE of the 1,000 failed allocations' ends and one INSERT of the 1,000
   spare allocations (the same rows), committed. Printed with the ratio service / floor.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import throwaway_database, verdict  # noqa: E402

BENCH_DB = "landlord_bench_replace"
CLUSTERS = 10
NODES_PER_CLUSTER = 300
LEASES_PER_CLUSTER = 10
NODES_PER_LEASE = 20
FAILED_PER_LEASE = 10
REPEAT = 3
TARGET_S = 2.0
SWAP = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def main() -> int:
    with throwaway_database(BENCH_DB):
        world = build()
        replace_bench(world)
    return 0


def build() -> dict:
    from django.db import connection

    from clusters.models import AcceleratorModel, Cluster, Incident, Node, Site
    from leasing import services
    from leasing.models import Allocation, Lease, Tenant

    site = Site.objects.create(
        name="Bench", slug="bench-site", latitude=41.9, longitude=-87.6, power_mw=500
    )
    h100 = AcceleratorModel.objects.get(slug="h100")
    before = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    leases = []
    for c in range(CLUSTERS):
        cluster = Cluster.objects.create(
            site=site,
            name=f"pool-{c}",
            slug=f"bench-pool-{c}",
            accelerator=h100,
            gpus_per_node=8,
            fabric_gbps_per_gpu=400,
        )
        Node.objects.bulk_create(
            Node(cluster=cluster, hostname=f"bench-{c:02d}-{i:04d}")
            for i in range(NODES_PER_CLUSTER)
        )
        for i in range(LEASES_PER_CLUSTER):
            tenant = Tenant.objects.create(name=f"Lab {c}-{i}", slug=f"bench-lab-{c}-{i}")
            lease = services.lease_create(
                tenant=tenant,
                lines=[
                    services.LineSpec(
                        cluster=cluster,
                        node_count=NODES_PER_LEASE,
                        monthly_rate=Decimal("2000000"),
                    )
                ],
                commencement_date=dt.date(2026, 2, 1),
                now=before,
            )
            leases.append(services.lease_approve(lease=lease, now=before))
    failed: dict[int, list[int]] = {}
    incidents = []
    for lease in leases:
        rows = list(
            Allocation.objects.filter(line__lease=lease)
            .order_by("node_id")
            .values_list("pk", "node_id")[:FAILED_PER_LEASE]
        )
        failed[lease.pk] = [pk for pk, _ in rows]
        incidents += [
            Incident(
                node_id=node_id,
                category="gpu",
                source="monitoring",
                opened_at=SWAP - dt.timedelta(hours=1),
            )
            for _, node_id in rows
        ]
    Incident.objects.bulk_create(incidents)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "leases": list(Lease.objects.filter(pk__in=failed).order_by("pk")),
        "failed": failed,
        "end": Allocation.objects.get(pk=next(iter(failed.values()))[0]).ends_at,
        "max_allocation": Allocation.objects.order_by("-pk").values_list("pk", flat=True)[0],
    }


def reset(world: dict) -> None:
    """Back to the state before any swap."""
    from django.db import transaction

    from leasing.models import Allocation, LeaseEvent, Replacement

    with transaction.atomic():
        Replacement.objects.all().delete()
        LeaseEvent.objects.filter(kind="node.replaced").delete()
        Allocation.objects.filter(pk__gt=world["max_allocation"]).delete()
        ids = [pk for pks in world["failed"].values() for pk in pks]
        Allocation.objects.filter(pk__in=ids).update(ends_at=world["end"])


def replace_bench(world: dict) -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from leasing import replacement
    from leasing.models import Allocation, Replacement

    total = sum(len(v) for v in world["failed"].values())
    batch_times, all_times, floor_times, queries, all_queries = [], [], [], 0, 0
    single_times: list[float] = []
    for _ in range(REPEAT):
        reset(world)
        allocations = {
            lease.pk: list(Allocation.objects.filter(pk__in=world["failed"][lease.pk]))
            for lease in world["leases"]
        }
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            for lease in world["leases"]:
                replacement.nodes_replace(
                    lease=lease, allocations=allocations[lease.pk], now=SWAP, reason="bench"
                )
            batch_times.append(time.perf_counter() - started)
        queries = len(ctx.captured_queries)
        assert Replacement.objects.count() == total
        swapped = list(
            Replacement.objects.values_list(
                "failed_allocation_id", "spare_allocation__line_id", "spare_allocation__node_id"
            )
        )

        reset(world)
        everything = [a for lease in world["leases"] for a in allocations[lease.pk]]
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            replacement.nodes_replace(allocations=everything, now=SWAP, reason="bench")
            all_times.append(time.perf_counter() - started)
        all_queries = len(ctx.captured_queries)
        assert Replacement.objects.count() == total

        if not single_times:  # once is enough: 1,000 transactions, informational
            reset(world)
            one_by_one = list(
                Allocation.objects.filter(
                    pk__in=[pk for pks in world["failed"].values() for pk in pks]
                ).select_related("line")
            )
            started = time.perf_counter()
            for allocation in one_by_one:
                replacement.node_replace(allocation=allocation, now=SWAP, reason="bench")
            single_times.append(time.perf_counter() - started)
            assert Replacement.objects.count() == total

        # Floor: the same allocation rows, written by two raw statements.
        reset(world)
        failed_ids = [f for f, _, _ in swapped]
        lines = [line for _, line, _ in swapped]
        nodes = [node for _, _, node in swapped]
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE leasing_allocation SET ends_at = %s WHERE id = ANY(%s)",
                [SWAP, failed_ids],
            )
            cursor.execute(
                "INSERT INTO leasing_allocation (line_id, node_id, starts_at, ends_at) "
                "SELECT l, n, %s, %s FROM unnest(%s::bigint[], %s::bigint[]) AS t(l, n)",
                [SWAP, world["end"], lines, nodes],
            )
        floor_times.append(time.perf_counter() - started)
    batch = statistics.median(batch_times)
    at_once = statistics.median(all_times)
    single = statistics.median(single_times)
    floor = statistics.median(floor_times)
    leases = len(world["leases"])
    print(
        f"replace {total:,} nodes across {leases} leases (nodes_replace, one call per lease): "
        f"{batch:.3f} s (target <= {TARGET_S:.3f} s, {queries} queries) "
        f"{verdict(batch <= TARGET_S)}"
    )
    print(
        f"  one call for all {total:,} nodes (nodes_replace across {leases} leases, one lock set): "
        f"{at_once:.3f} s ({all_queries} queries) {verdict(at_once <= TARGET_S)}"
    )
    print(f"  one call per node (node_replace, {total:,} transactions): {single:.3f} s")
    print(f"  floor, raw UPDATE + INSERT of the same {total:,} allocation rows: {floor:.3f} s")
    print(
        f"  ratio per lease / floor: {batch / floor:.1f}x, all at once / floor: "
        f"{at_once / floor:.1f}x, per node / floor: {single / floor:.1f}x"
        f"  (runs: {REPEAT})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
