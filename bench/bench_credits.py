"""Service-credit benchmark on PostgreSQL: the month-close credit run over 10,000 lease lines
with 100,000 incidents.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_credits.py

Creates a throwaway database `landlord_bench_credits`, migrates it, measures, prints each figure
beside its target with PASS/MISS, and drops the database.

Set-up: 5,000 leases of two lines each (10,000 lines, 2 nodes each, accepted at commencement)
from 2026-01-01 in four contract zones, bulk-inserted; January billed; 100,000 resolved
incidents in January spread over the 20,000 nodes. Measured: `service_credit_run` just after
January closes (00:20 UTC on February 2), which settles January for every lease: 5,000
availability reports, a service credit note for every lease whose lines earned one, with its
lines, numbers and events — wall time and queries.

Floor, measured in the same run: a raw bulk insert of the same report, note and note-line rows
(Django `bulk_create` in batches of 5,000, no computation, no locks, no numbering), rolled back.
Target: the run costs at most 3× the floor.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    bench_leases,
    copies,
    report,
    throwaway_database,
    timed,
    verdict,
)

BENCH_DB = "landlord_bench_credits"
LEASES = 5_000
LINES_PER_LEASE = 2
NODES_PER_LINE = 2
INCIDENTS = 100_000
ZONES = ["UTC", "America/Los_Angeles", "America/Chicago", "Asia/Tokyo"]
TARGET_RATIO = 3.0
JANUARY = dt.date(2026, 1, 1)


def main() -> int:
    with throwaway_database(BENCH_DB):
        figures = run_bench()
    report(figures)
    return 0


def seed() -> None:
    from clusters.models import Incident, Node
    from leasing.models import Allocation

    leases, lines = bench_leases(
        LEASES,
        zones=tuple(ZONES),
        lines_per_lease=LINES_PER_LEASE,
        node_count=NODES_PER_LINE,
        start=JANUARY,
    )
    cluster = lines[0].cluster
    nodes = Node.objects.bulk_create(
        (Node(cluster=cluster, hostname=f"b{k:06d}") for k in range(len(lines) * NODES_PER_LINE)),
        batch_size=5000,
    )
    by_lease = {lease.pk: lease for lease in leases}
    Allocation.objects.bulk_create(
        (
            Allocation(
                line=line,
                node=nodes[n * NODES_PER_LINE + k],
                starts_at=by_lease[line.lease_id].commencement,
                ends_at=by_lease[line.lease_id].term_end,
                accepted_at=by_lease[line.lease_id].commencement,
            )
            for n, line in enumerate(lines)
            for k in range(NODES_PER_LINE)
        ),
        batch_size=5000,
    )
    rng = random.Random(15)
    start = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    incidents = []
    for _ in range(INCIDENTS):
        opened = start + dt.timedelta(minutes=rng.randrange(0, 27 * 1440))
        incidents.append(
            Incident(
                node=nodes[rng.randrange(len(nodes))],
                category="gpu",
                source="monitoring",
                status="resolved",
                opened_at=opened,
                resolved_at=opened + dt.timedelta(minutes=rng.randrange(1, 600)),
            )
        )
    Incident.objects.bulk_create(incidents, batch_size=5000)


def floor_insert() -> float:
    """Seconds to bulk-insert (ORM) the same report, note and note-line rows, rolled back."""
    from django.db import transaction

    from billing.models import AvailabilityReport, CreditNote, CreditNoteLine

    reports = list(AvailabilityReport.objects.order_by("pk"))
    notes = list(CreditNote.objects.filter(kind="service").order_by("pk"))
    lines = list(CreditNoteLine.objects.filter(credit_note__kind="service").order_by("pk"))
    shifted = dt.date(2030, 1, 1)  # free slots for the same rows
    times = []
    for _ in range(3):
        with transaction.atomic():
            sid = transaction.savepoint()
            with timed() as t:
                notes_ = copies(
                    CreditNote,
                    notes,
                    (
                        *("tenant_id", "lease_id", "invoice_id", "kind", "currency", "total"),
                        "reason",
                    ),
                    period=shifted,
                )
                CreditNote.objects.bulk_create(notes_, batch_size=5000)
                mapping = {old.pk: new.pk for old, new in zip(notes, notes_, strict=True)}
                CreditNoteLine.objects.bulk_create(
                    copies(
                        CreditNoteLine,
                        lines,
                        (
                            *("invoice_line_id", "lease_line_id", "description"),
                            *("service_start", "service_end", "days", "amount"),
                        ),
                        credit_note_id=mapping,
                    ),
                    batch_size=5000,
                )
                AvailabilityReport.objects.bulk_create(
                    copies(
                        AvailabilityReport,
                        reports,
                        (
                            *("lease_id", "tenant_id", "period_start", "period_end"),
                            *("computed_at", "in_service_us", "downtime_us", "credit"),
                            *("currency", "report"),
                        ),
                        period=shifted,
                    ),
                    batch_size=5000,
                )
            times.append(t[0])
            transaction.savepoint_rollback(sid)
    return statistics.median(times)


def run_bench() -> list[tuple[str, str, str, str]]:
    from django.db import connection

    from billing import service_credits, services
    from billing.models import AvailabilityReport, CreditNote
    from clusters.models import Incident

    with timed() as t_seed:
        seed()
    print(
        f"seeded {LEASES} leases × {LINES_PER_LEASE} lines, "
        f"{Incident.objects.count():,} incidents in {t_seed[0]:.1f} s",
        flush=True,
    )
    services.billing_run(now=dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC))  # January
    now = dt.datetime(2026, 2, 2, 0, 20, tzinfo=dt.UTC)
    counter = Counter()
    with connection.execute_wrapper(counter), timed() as t:
        issued = service_credits.service_credit_run(now=now)
    reports = AvailabilityReport.objects.count()
    print(
        f"credit run: {reports} reports, {issued} service credit notes in {t[0]:.2f} s, "
        f"{counter.count} queries",
        flush=True,
    )
    assert reports == LEASES, reports
    assert CreditNote.objects.filter(kind="service").count() == issued
    again = service_credits.service_credit_run(now=now)
    assert again == 0, again
    floor = floor_insert()
    ratio = t[0] / floor
    lines = LEASES * LINES_PER_LEASE
    return [
        ("lease lines settled", f"{lines:,}", "10,000", verdict(lines >= 10_000)),
        ("incidents", f"{INCIDENTS:,}", "100,000", verdict(INCIDENTS >= 100_000)),
        ("service credit notes issued", f"{issued:,}", "—", "info"),
        ("month-close credit run, wall", f"{t[0]:.2f} s", "—", "info"),
        ("queries", f"{counter.count}", "bounded (chunks of 500 leases)", "info"),
        ("floor: bulk_create of the same rows", f"{floor:.2f} s", "—", "info"),
        (
            "run / bulk-insert floor",
            f"{ratio:.2f}×",
            f"≤ {TARGET_RATIO:.0f}×",
            verdict(ratio <= TARGET_RATIO),
        ),
    ]


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


if __name__ == "__main__":
    raise SystemExit(main())
