"""Leasing benchmark on PostgreSQL: allocation of one 12,500-node line, boundary job at rest.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_leasing.py

Creates a throwaway database `landlord_bench_leasing` on the server of DATABASE_URL, migrates it,
measures, prints each figure beside its target with PASS/MISS, and drops the database. Figures
are wall-clock medians of several runs on this machine.

1. `lease_approve` of a lease with one line of 12,500 nodes (100,000 GPUs): lock, one set-based
   query for free healthy nodes, bulk insert under the exclusion constraint, event. Target ≤ 2 s.
   Printed beside the floor: a raw single-statement insert of the same 12,500 rows.
2. `process_boundaries` over 10,000 active leases with nothing due. Target ≤ 0.2 s, with the
   number of queries (constant whatever the number of leases).
3. Informational: `seed_leasing` (demo leases) at scale 1.0 on the full demo inventory.
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

BENCH_DB = "landlord_bench_leasing"
NODES = 12_500
LEASES = 10_000
REPEAT = 3


def main() -> int:
    with throwaway_database(BENCH_DB):
        allocation_bench()
        boundary_bench()
        demo_bench()
    return 0


def make_cluster(slug: str, nodes: int):
    from clusters.models import AcceleratorModel, Cluster, Node, Site

    site, _ = Site.objects.get_or_create(
        slug="bench-site",
        defaults={"name": "Bench", "latitude": 41.9, "longitude": -87.6, "power_mw": 500},
    )
    cluster = Cluster.objects.create(
        site=site,
        name=slug,
        slug=slug,
        accelerator=AcceleratorModel.objects.get(slug="h100"),
        gpus_per_node=8,
        fabric_gbps_per_gpu=400,
    )
    Node.objects.bulk_create(
        (Node(cluster=cluster, hostname=f"{slug}-{i:05d}") for i in range(nodes)), batch_size=5000
    )
    return cluster


def allocation_bench() -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from leasing import services
    from leasing.models import Allocation, Tenant

    tenant = Tenant.objects.create(name="Bench Lab", slug="bench-lab")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    service_times, floor_times, queries = [], [], 0
    for run in range(REPEAT):
        cluster = make_cluster(f"bench-alloc-{run}", NODES)
        lease = services.lease_create(
            tenant=tenant,
            lines=[
                services.LineSpec(
                    cluster=cluster, node_count=NODES, monthly_rate=Decimal("1250000000")
                )
            ],
            commencement_date=dt.date(2026, 2, 1),
            now=now,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            services.lease_approve(lease=lease, now=now)
            service_times.append(time.perf_counter() - started)
        queries = len(ctx.captured_queries)
        line = lease.lines.get()
        rows = list(
            Allocation.objects.filter(line=line).values_list("node_id", "starts_at", "ends_at")
        )
        assert len(rows) == NODES
        # Floor: the same rows written again by one raw INSERT, nothing else.
        Allocation.objects.filter(line=line).delete()
        node_ids = [r[0] for r in rows]
        starts_at, ends_at = rows[0][1], rows[0][2]
        with transaction.atomic(), connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(
                "INSERT INTO leasing_allocation (line_id, node_id, starts_at, ends_at) "
                "SELECT %s, n, %s, %s FROM unnest(%s::bigint[]) AS n",
                [line.pk, starts_at, ends_at, node_ids],
            )
            floor_times.append(time.perf_counter() - started)
    service = statistics.median(service_times)
    floor = statistics.median(floor_times)
    print(
        f"allocate one line of {NODES:,} nodes (lease_approve): {service:.3f} s "
        f"(target <= 2.000 s, {queries} queries) {verdict(service <= 2.0)}"
    )
    print(f"  floor, raw single INSERT of the same {NODES:,} rows: {floor:.3f} s")
    print(f"  ratio service / floor: {service / floor:.1f}x  (runs: {REPEAT})")


def boundary_bench() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from common.contract_time import local_midnight
    from leasing import boundaries
    from leasing.choices import LeaseStatus
    from leasing.models import Lease, Tenant

    tenant = Tenant.objects.create(name="Bench Fleet", slug="bench-fleet")
    leases = []
    for i in range(LEASES):
        start = dt.date(2026, 1, 1) + dt.timedelta(days=i % 60)
        leases.append(
            Lease(
                number=f"L-BENCH-{i:05d}",
                tenant=tenant,
                status=LeaseStatus.ACTIVE,
                commencement_date=start,
                commencement=local_midnight(start, "UTC"),
                term_end=local_midnight(start + dt.timedelta(days=180), "UTC"),
            )
        )
    Lease.objects.bulk_create(leases, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    now = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)
    boundaries.process_boundaries(now=now)  # warm-up (connection, plans)
    times, queries = [], 0
    for _ in range(5):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            counts = boundaries.process_boundaries(now=now)
            times.append(time.perf_counter() - started)
        assert counts == {}, counts
        queries = len(ctx.captured_queries)
    figure = statistics.median(times)
    print(
        f"boundary job, {LEASES:,} leases, nothing due: {figure:.4f} s "
        f"(target <= 0.200 s, {queries} queries) {verdict(figure <= 0.2)}"
    )


def demo_bench() -> None:
    from django.utils import timezone

    from clusters.demo import seed_inventory
    from leasing.demo import seed_leasing
    from leasing.models import Lease

    # The benches' own leases would otherwise all fall due at the real `now` and be settled by
    # the demo's boundary run, which is not what this figure is about.
    Lease.objects.filter(tenant__slug__startswith="bench-").delete()
    seed_inventory(scale=1.0)
    now = timezone.now()
    started = time.perf_counter()
    created = seed_leasing(scale=1.0, now=now)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = seed_leasing(scale=1.0, now=now)
    second = time.perf_counter() - started
    print(f"demo leases at scale 1.0 (seed_leasing): {first:.2f} s, created {created}")
    print(f"  second run (idempotent): {second:.2f} s, created {again}")


if __name__ == "__main__":
    raise SystemExit(main())
