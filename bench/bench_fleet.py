"""Fleet benchmark on PostgreSQL: health event ingestion.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_fleet.py

Creates a throwaway database `landlord_bench_fleet`, migrates it, measures, prints each figure
beside its target with PASS/MISS, and drops the database.

Ingest 100,000 health events from one monitoring source in batches of 1,000 through the
service the API calls (`clusters.ingest.health_events_ingest`: checks, the source's lock, the
duplicate lookup, incidents opened and resolved, events stored, node status refreshed, domain
events emitted) over 10,000 nodes: mostly `ok` on healthy nodes, 3 % `down`/`degraded` opening
incidents, 2 % `ok` resolving them. Target: at most 3× the floor, a raw bulk insert of the same
100,000 rows into the same table in the same batches (one `INSERT ... SELECT FROM unnest(...)`
per batch, nothing else), measured in the same run. Both are printed with the ratio. A second
pass re-sends one batch to show a repeated batch is reported as duplicates and applies nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import throwaway_database, verdict  # noqa: E402

BENCH_DB = "landlord_bench_fleet"
NODES = 10_000
EVENTS = 100_000
BATCH = 1_000
TARGET_RATIO = 3.0


def main() -> int:
    with throwaway_database(BENCH_DB):
        ingestion_bench()
    return 0


def make_nodes():
    from clusters.models import AcceleratorModel, Cluster, Node, Site

    site = Site.objects.create(
        slug="bench-site", name="Bench", latitude=41.9, longitude=-87.6, power_mw=500
    )
    cluster = Cluster.objects.create(
        site=site,
        name="bench",
        slug="bench",
        accelerator=AcceleratorModel.objects.get(slug="h100"),
        gpus_per_node=8,
        fabric_gbps_per_gpu=400,
    )
    Node.objects.bulk_create(
        (Node(cluster=cluster, hostname=f"bench-{i:05d}") for i in range(NODES)), batch_size=5000
    )
    return [f"bench-{i:05d}" for i in range(NODES)]


def workload(hostnames: list[str], start: dt.datetime):
    """Batches of `HealthEventIn`, in observation order; failing nodes later heal."""
    from clusters.ingest import HealthEventIn

    rng = random.Random(14)
    failing: dict[str, str] = {}
    batches = []
    for b in range(EVENTS // BATCH):
        batch = []
        for i in range(BATCH):
            n = b * BATCH + i
            at = start + dt.timedelta(milliseconds=50 * n)
            roll = rng.random()
            if roll < 0.03:
                host = rng.choice(hostnames)
                category = rng.choice(("gpu", "nvlink", "network", "power"))
                failing[host] = category
                severity, details = rng.choice(("down", "degraded")), {"xid": 79, "gpu": i % 8}
            elif roll < 0.05 and failing:
                host = rng.choice(sorted(failing))
                category, severity, details = failing.pop(host), "ok", {}
            else:
                host, category, severity, details = rng.choice(hostnames), "", "ok", {}
            batch.append(
                HealthEventIn(
                    event_id=f"evt-{n:07d}",
                    node=host,
                    observed_at=at,
                    severity=severity,
                    category=category,
                    message="" if severity == "ok" else "XID error",
                    details=details,
                )
            )
        batches.append(batch)
    return batches


def ingestion_bench() -> None:
    from django.db import connection, transaction

    from clusters.ingest import health_events_ingest, monitoring_source_create
    from clusters.models import HealthEvent, Incident, Node

    hostnames = make_nodes()
    source, _ = monitoring_source_create(name="bench-monitoring")
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    batches = workload(hostnames, start)
    now = start + dt.timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    started = time.perf_counter()
    opened = resolved = 0
    for batch in batches:
        result = health_events_ingest(source=source, items=batch, now=now)
        opened += len(result.opened)
        resolved += len(result.resolved)
    service = time.perf_counter() - started
    stored = HealthEvent.objects.count()
    assert stored == EVENTS, stored

    repeat = health_events_ingest(source=source, items=batches[0], now=now)
    assert repeat.applied == 0
    assert len(repeat.duplicates) == BATCH

    # Floor: the same rows, same batches, one raw INSERT each, into an emptied table.
    ids = dict(Node.objects.values_list("hostname", "pk"))
    HealthEvent.objects.all().delete()
    started = time.perf_counter()
    for batch in batches:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO clusters_healthevent (source_id, event_id, node_id, observed_at, "
                "received_at, severity, category, message, details, incident_id) "
                "SELECT %s, e, n, o, %s, s, c, m, d::jsonb, NULL FROM unnest("
                "%s::text[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[], "
                "%s::text[], %s::text[]) AS t(e, n, o, s, c, m, d)",
                [
                    source.pk,
                    now,
                    [e.event_id for e in batch],
                    [ids[e.node] for e in batch],
                    [e.observed_at for e in batch],
                    [e.severity for e in batch],
                    [e.category for e in batch],
                    [e.message for e in batch],
                    [json.dumps(e.details) for e in batch],
                ],
            )
    floor = time.perf_counter() - started
    assert HealthEvent.objects.count() == EVENTS
    ratio = service / floor
    print(
        f"ingest {EVENTS:,} health events in batches of {BATCH:,} (health_events_ingest): "
        f"{service:.3f} s ({EVENTS / service:,.0f} events/s; {opened:,} incidents opened, "
        f"{resolved:,} resolved, {Incident.objects.filter(status='open').count():,} open)"
    )
    print(f"  floor, raw INSERT ... unnest of the same rows per batch: {floor:.3f} s")
    print(
        f"  ratio service / floor: {ratio:.2f}x (target <= {TARGET_RATIO:.1f}x) "
        f"{verdict(ratio <= TARGET_RATIO)}"
    )
    print(f"  a repeated batch: {len(repeat.duplicates):,} duplicates, {repeat.applied} applied")


if __name__ == "__main__":
    raise SystemExit(main())
