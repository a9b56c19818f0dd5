"""Billing benchmark on PostgreSQL: one monthly run over 10,000 lease lines.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_billing.py

Creates a throwaway database `landlord_bench_billing` on the server of DATABASE_URL, migrates
it, measures, prints each figure beside its target with PASS/MISS, and drops the database.

Set-up: 5,000 leases of two lines each (10,000 lines) in four contract zones, bulk-inserted,
and January already billed. Measured: `billing_run` at 12:00 UTC seven days before each of
February, March and April, each issuing that month's invoice for every lease (5,000 invoices,
10,000 invoice lines, 5,000 gapless numbers) in chunks under lease locks — wall time (median of
the three) and queries.

Floor, measured in the same run: a raw bulk insert of the same invoice and line rows (Django
`bulk_create` in batches of 5,000, no computation, no locks, no numbering), rolled back.
Target: the run costs at most 3× the floor. The PostgreSQL `COPY` of the same
rows is printed for information (an even lower floor no ORM path reaches), and so is a bulk
insert of the same rows with the ledger rows the run also writes (one posting per invoice, one
revenue schedule per line). The target stays on the invoice and line floor: the run has the
database copy its ledger rows from the documents (`INSERT … SELECT`), so a floor that builds
them in Python would flatter the run.
"""

from __future__ import annotations

import datetime as dt
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

BENCH_DB = "landlord_bench_billing"
LEASES = 5_000
LINES_PER_LEASE = 2
ZONES = ["UTC", "America/Los_Angeles", "America/Chicago", "Asia/Tokyo"]
TARGET_RATIO = 3.0
# Three monthly runs, each issuing one new month for every lease (the month is in advance).
RUN_DAYS = [dt.date(2026, 1, 25), dt.date(2026, 2, 22), dt.date(2026, 3, 25)]


def main() -> int:
    with throwaway_database(BENCH_DB):
        figures = run_bench()
    report(figures)
    return 0


def seed() -> None:
    bench_leases(LEASES, zones=tuple(ZONES), lines_per_lease=LINES_PER_LEASE)


def insert_documents(source, lines, period: dt.date) -> dict[int, int]:
    """Bulk-insert (ORM) copies of the invoices `source` for `period` and of their `lines`;
    returns old invoice id → new invoice id."""
    from billing.models import Invoice, InvoiceLine

    invoices = copies(
        Invoice,
        source,
        ("tenant_id", "lease_id", "kind", "period_start", "period_end", "currency", "total"),
        period=period,
    )
    Invoice.objects.bulk_create(invoices, batch_size=5000)
    mapping = {old.pk: new.pk for old, new in zip(source, invoices, strict=True)}
    InvoiceLine.objects.bulk_create(
        copies(
            InvoiceLine,
            lines,
            (
                *("lease_line_id", "description", "service_start", "service_end", "days"),
                *("days_in_month", "monthly_rate", "rate_multiplier", "amount"),
            ),
            invoice_id=mapping,
        ),
        batch_size=5000,
    )
    return mapping


def floor_insert(month: dt.date) -> tuple[float, float, float]:
    """Seconds to bulk-insert (ORM) and COPY the same invoice and line rows as one month's
    run, and to bulk-insert (ORM) those with the run's ledger rows (its postings and revenue
    schedules), rolled back."""
    from django.db import connection, transaction

    from billing.models import Invoice, InvoiceLine, Posting, RevenueSchedule

    source = list(Invoice.objects.filter(period=month).order_by("pk"))
    lines = list(InvoiceLine.objects.filter(invoice__period=month).order_by("pk"))
    postings = list(Posting.objects.filter(invoice__period=month, kind="invoice").order_by("pk"))
    schedules = list(RevenueSchedule.objects.filter(invoice__period=month).order_by("pk"))
    by_invoice = {inv.pk: inv for inv in source}
    shifted = dt.date(2030, month.month, 1)  # a free slot for the same rows

    orm_times, copy_times, ledger_times = [], [], []
    for _ in range(3):
        with transaction.atomic():
            sid = transaction.savepoint()
            with timed() as t:
                insert_documents(source, lines, shifted)
            orm_times.append(t[0])
            transaction.savepoint_rollback(sid)

        with transaction.atomic():
            sid = transaction.savepoint()
            with timed() as t:
                mapping = insert_documents(source, lines, shifted)
                Posting.objects.bulk_create(
                    copies(
                        Posting,
                        postings,
                        (
                            *("day", "posted_at", "kind", "debit", "credit", "amount"),
                            *("currency", "tenant_id"),
                        ),
                        invoice_id=mapping,
                    ),
                    batch_size=5000,
                )
                RevenueSchedule.objects.bulk_create(
                    copies(
                        RevenueSchedule,
                        schedules,
                        ("tenant_id", "amount", "service_start", "service_end"),
                        invoice_id=mapping,
                    ),
                    batch_size=5000,
                )
            ledger_times.append(t[0])
            transaction.savepoint_rollback(sid)

        with transaction.atomic():
            sid = transaction.savepoint()
            with timed() as t, connection.cursor() as cursor:
                raw = cursor.cursor  # the psycopg cursor
                with raw.copy(
                    "COPY billing_invoice (tenant_id, lease_id, kind, period, period_start, "
                    "period_end, status, currency, total, is_overdue, void_reason, created_at) "
                    "FROM STDIN"
                ) as copy:
                    for i in source:
                        copy.write_row(
                            (
                                i.tenant_id,
                                i.lease_id,
                                i.kind,
                                shifted,
                                i.period_start,
                                i.period_end,
                                "draft",
                                i.currency,
                                i.total,
                                False,
                                "",
                                i.created_at,
                            )
                        )
                raw.execute(
                    "SELECT id, lease_id FROM billing_invoice WHERE period = %s", (shifted,)
                )
                new_ids = {lease: pk for pk, lease in raw.fetchall()}
                with raw.copy(
                    "COPY billing_invoiceline (invoice_id, lease_line_id, description, "
                    "service_start, service_end, days, days_in_month, monthly_rate, "
                    "rate_multiplier, amount) FROM STDIN"
                ) as copy:
                    for line in lines:
                        inv = by_invoice[line.invoice_id]
                        copy.write_row(
                            (
                                new_ids[inv.lease_id],
                                line.lease_line_id,
                                line.description,
                                line.service_start,
                                line.service_end,
                                line.days,
                                line.days_in_month,
                                line.monthly_rate,
                                line.rate_multiplier,
                                line.amount,
                            )
                        )
            copy_times.append(t[0])
            transaction.savepoint_rollback(sid)
    return (
        statistics.median(orm_times),
        statistics.median(copy_times),
        statistics.median(ledger_times),
    )


def run_bench() -> list[tuple[str, str, str, str]]:
    from django.db import connection

    from billing import services
    from billing.models import Invoice, InvoiceLine

    with timed() as t_seed:
        seed()
    print(f"seeded {LEASES} leases × {LINES_PER_LEASE} lines in {t_seed[0]:.1f} s", flush=True)
    services.billing_run(now=dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC))  # January

    times, queries = [], []
    for day in RUN_DAYS:
        counter = Counter()
        now = dt.datetime.combine(day, dt.time(12, 0), tzinfo=dt.UTC)
        with connection.execute_wrapper(counter), timed() as t:
            run = services.billing_run(now=now)
        times.append(t[0])
        queries.append(counter.count)
        print(
            f"run {day}: {run.invoices_issued} invoices in {t[0]:.2f} s, {counter.count} queries",
            flush=True,
        )
    month = dt.date(2026, 2, 1)
    invoices = Invoice.objects.filter(period=month).count()
    lines = InvoiceLine.objects.filter(invoice__period=month).count()
    assert invoices == LEASES, invoices
    assert lines == LEASES * LINES_PER_LEASE, lines

    orm_floor, copy_floor, ledger_floor = floor_insert(month)
    run_time = statistics.median(times)
    ratio = run_time / orm_floor
    return [
        ("lease lines billed per run", f"{lines:,}", "10,000", verdict(lines >= 10_000)),
        ("monthly run, wall (median of 3)", f"{run_time:.2f} s", "—", "info"),
        ("queries per run", f"{max(queries)}", "bounded (chunks of 500)", "info"),
        ("floor: bulk_create of the same rows", f"{orm_floor:.2f} s", "—", "info"),
        ("floor: COPY of the same rows", f"{copy_floor:.2f} s", "—", "info"),
        (
            "run / bulk-insert floor",
            f"{ratio:.2f}×",
            f"≤ {TARGET_RATIO:.0f}×",
            verdict(ratio <= TARGET_RATIO),
        ),
        ("run / COPY floor (info)", f"{run_time / copy_floor:.2f}×", "—", "info"),
        ("floor with the ledger rows (info)", f"{ledger_floor:.2f} s", "—", "info"),
        ("run / floor with the ledger rows (info)", f"{run_time / ledger_floor:.2f}×", "—", "info"),
    ]


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


if __name__ == "__main__":
    raise SystemExit(main())
