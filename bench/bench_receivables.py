"""Receivables benchmark on PostgreSQL: daily revenue recognition and aging as of a past date.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_receivables.py

1. Recognition: 5,000 leases of two lines each (10,000 lease lines) billed for January, then
   `ledger.recognize_day` for 2026-01-15 (10,000 schedules brought to the day's end, one
   posting per invoice). Floor, measured in the same run: a raw bulk insert of the same posting
   rows (`bulk_create`, rolled back). Target: recognition ≤ 3× the floor.
2. Aging: 100,000 issued invoices and 100,000 payments (each applied to an invoice) over 500
   tenants, bulk-inserted; `aging.aging(day=...)` as of a past date (both of its queries, the
   buckets and the unapplied money). Target: ≤ 1 s.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_leases, report, throwaway_database, timed, verdict  # noqa: E402

BENCH_DB = "landlord_bench_receivables"
LEASES = 5_000
AGING_ROWS = 100_000
TENANTS = 500
UTC = dt.UTC


def main() -> int:
    with throwaway_database(BENCH_DB):
        figures = recognition_bench() + aging_bench()
    report(figures)
    return 0


def recognition_bench() -> list[tuple[str, str, str, str]]:
    from django.db import transaction

    from billing import ledger, services
    from billing.models import Posting, RecognitionRun

    start = dt.date(2026, 1, 1)
    bench_leases(LEASES, rate=lambda i, _j: Decimal(1_000_000 + i), start=start)
    services.billing_run(now=dt.datetime(2026, 1, 1, 0, 10, tzinfo=UTC), period=start)
    # Warm up the day before (every schedule gets its first posting), then measure one day.
    ledger.recognize_day(day=dt.date(2026, 1, 13))
    times = []
    for day in (14, 15, 16):
        with timed() as t:
            outcome = ledger.recognize_day(day=dt.date(2026, 1, day))
        times.append(t[0])
    postings = list(Posting.objects.filter(day=dt.date(2026, 1, 16), kind="recognition"))
    floors = []
    for _ in range(3):
        with transaction.atomic():
            sid = transaction.savepoint()
            copies = [
                Posting(
                    day=p.day,
                    posted_at=p.posted_at,
                    kind=p.kind,
                    debit=p.debit,
                    credit=p.credit,
                    amount=p.amount,
                    currency=p.currency,
                    tenant_id=p.tenant_id,
                    invoice_id=p.invoice_id,
                )
                for p in postings
            ]
            with timed() as t:
                Posting.objects.bulk_create(copies, batch_size=2000)
            floors.append(t[0])
            transaction.savepoint_rollback(sid)
    run, floor = statistics.median(times), statistics.median(floors)
    ratio = run / floor
    assert RecognitionRun.objects.count() == 4
    assert outcome.postings == len(postings)
    return [
        ("recognition of one day, 10,000 lease lines (s, median of 3)", f"{run:.3f}", "", ""),
        (f"raw bulk insert of its {len(postings)} postings (s)", f"{floor:.3f}", "", ""),
        ("ratio recognition / insert", f"{ratio:.2f}", "≤ 3", verdict(ratio <= 3)),
    ]


def aging_bench() -> list[tuple[str, str, str, str]]:
    from django.db import connection

    from billing import aging
    from billing.models import Application, Invoice, Payment
    from leasing.models import Lease, Tenant

    tenants = Tenant.objects.bulk_create(
        Tenant(name=f"Aging lab {i}", slug=f"aging-lab-{i}") for i in range(TENANTS)
    )
    lease_by_tenant = {}
    for t in tenants:
        lease_by_tenant[t.pk] = Lease.objects.create(
            number=f"L-AGE-{t.pk}",
            tenant=t,
            status="active",
            contract_timezone="UTC",
            commencement_date=dt.date(2020, 1, 1),
            commencement=dt.datetime(2020, 1, 1, tzinfo=UTC),
            term_end=dt.datetime(2030, 1, 1, tzinfo=UTC),
        )
    base = dt.datetime(2022, 1, 1, tzinfo=UTC)
    invoices = []
    for i in range(AGING_ROWS):
        tenant = tenants[i % TENANTS]
        month = i // TENANTS  # one invoice per tenant and "month" slot
        issued = base + dt.timedelta(days=(i * 7) % 1400)
        invoices.append(
            Invoice(
                number=f"INV-B-{i:07d}",
                tenant=tenant,
                lease=lease_by_tenant[tenant.pk],
                period=dt.date(2000 + month // 12, month % 12 + 1, 1),
                period_start=issued,
                period_end=issued + dt.timedelta(days=30),
                status="issued",
                total=Decimal(1000 + i % 997) * 1000,
                issued_at=issued,
                due_at=issued + dt.timedelta(days=30),
            )
        )
    Invoice.objects.bulk_create(invoices, batch_size=5000)
    payments = Payment.objects.bulk_create(
        [
            Payment(
                tenant_id=inv.tenant_id,
                amount=inv.total / 2,
                value_date=(inv.issued_at + dt.timedelta(days=20)).date(),
                reference=f"W{i}",
                method="wire",
                recorded_at=inv.issued_at + dt.timedelta(days=20),
            )
            for i, inv in enumerate(invoices)
        ],
        batch_size=5000,
    )
    Application.objects.bulk_create(
        [
            Application(
                tenant_id=p.tenant_id,
                invoice_id=inv.pk,
                payment_id=p.pk,
                amount=p.amount,
                applied_at=p.recorded_at,
            )
            for p, inv in zip(payments, invoices, strict=True)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    times = []
    for _ in range(3):
        with timed() as t:
            rows = aging.aging(day=dt.date(2024, 6, 30))
        times.append(t[0])
    took = statistics.median(times)
    owed = sum((r.owed for r in rows.values()), Decimal(0))
    return [
        (
            f"aging as of a past date, {AGING_ROWS:,} invoices and payments (s, median of 3)",
            f"{took:.3f}",
            "≤ 1",
            verdict(took <= 1.0),
        ),
        ("tenants in the report / owed", f"{len(rows)} / {owed:,.2f}", "", ""),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
