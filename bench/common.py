"""Shared plumbing for the benchmarks: a throwaway PostgreSQL database and a result table.

Benchmarks print their figures beside a floor measured in the same run (a raw bulk insert, a
bare view, a plain numpy pass) and the ratio; they never assert timings inside the test suite.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _own_name(name: str, server: str) -> str:
    """`name`, qualified by the database $DATABASE_URL names (unless it is the maintenance
    database): two checkouts benchmarking on one server then never drop each other's database
    mid-run, while a run that died still has its leftover dropped by the next run."""
    own = urlsplit(server).path.lstrip("/")
    return f"{name}__{own}"[:63] if own and own != "postgres" else name


@contextlib.contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """Create database `name` (qualified by `_own_name`) on the server of $DATABASE_URL
    (PostgreSQL), point Django at it, migrate it, and drop it afterwards. Yields its URL."""
    import psycopg

    server = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("benchmarks run on PostgreSQL: set DATABASE_URL=postgres://...")
    name = _own_name(name, server)
    admin_url = _with_database(server, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ["DEBUG"] = "false"  # no query log growing in memory during the run
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    try:
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` then `t[0]` is the elapsed wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def copies(model: Any, rows: Iterable[Any], fields: Iterable[str], **changes: Any) -> list[Any]:
    """Unsaved `model` instances copying `fields` of each of `rows`, with `changes`: a value
    set on every copy, or a dict that maps the row's own value of that field (old id → new id).
    A floor's bulk insert so writes the same rows as the code it is measured against, in free
    slots."""
    names = tuple(fields)
    out = []
    for row in rows:
        values = {name: getattr(row, name) for name in names}
        for name, change in changes.items():
            values[name] = change[getattr(row, name)] if isinstance(change, dict) else change
        out.append(model(**values))
    return out


def report(rows: list[tuple[str, str, str, str]]) -> None:
    """Print (figure, value, target, verdict) rows as an aligned table."""
    head = ("figure", "measured", "target", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_cluster():
    """The one campus and H100 cluster the billing-side benchmarks lease from (nodes are
    not needed: rent is per line)."""
    from clusters.models import AcceleratorModel, Cluster, Site

    site = Site.objects.create(
        name="Bench", slug="bench", latitude=41.9, longitude=-87.6, power_mw=500
    )
    return Cluster.objects.create(
        site=site,
        name="bench-pool",
        slug="bench-pool",
        accelerator=AcceleratorModel.objects.get(slug="h100"),
        gpus_per_node=8,
        fabric_gbps_per_gpu=400,
    )


def bench_leases(
    count: int,
    *,
    zones: tuple[str, ...] = ("UTC",),
    lines_per_lease: int = 2,
    node_count: int = 10,
    rate=lambda i, j: Decimal(1_000_000 + 37 * i + j) + Decimal("0.13"),
    start: dt.date = dt.date(2026, 1, 1),
):
    """`count` active 180-day leases from `start` (zones in turn, 50 tenants), each with
    `lines_per_lease` lines of `node_count` nodes on `bench_cluster()` at `rate(lease index,
    line index)` a month, bulk-inserted; returns (leases, lines)."""
    from common.contract_time import local_midnight
    from leasing.models import Lease, LeaseLine, Tenant

    cluster = bench_cluster()
    tenants = Tenant.objects.bulk_create(
        Tenant(name=f"Bench lab {i}", slug=f"bench-lab-{i}") for i in range(50)
    )
    leases = [
        Lease(
            number=f"L-BENCH-{i:06d}",
            tenant=tenants[i % len(tenants)],
            status="active",
            contract_timezone=zones[i % len(zones)],
            commencement_date=start,
            commencement=local_midnight(start, zones[i % len(zones)]),
            term_end=local_midnight(start + dt.timedelta(days=180), zones[i % len(zones)]),
        )
        for i in range(count)
    ]
    Lease.objects.bulk_create(leases, batch_size=2000)
    lines = LeaseLine.objects.bulk_create(
        (
            LeaseLine(lease=lease, cluster=cluster, node_count=node_count, monthly_rate=rate(i, j))
            for i, lease in enumerate(leases)
            for j in range(lines_per_lease)
        ),
        batch_size=5000,
    )
    return leases, lines
