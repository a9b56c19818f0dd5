"""Demo billing on top of the demo leases (`leasing.demo.seed_leasing`).

Bills the demo leases up to `now` the way the product would have: the daily billing run is
replayed at 00:10 UTC on every day something fell due (each month's invoice 7 days before the
month in the contract zone, first partial months at commencement, holdover months once over),
then once more at `now`. Tenants are then shown as paying 20 days after issue; what is not yet
20 days old stays open, and overdue marking runs at `now`.

Credit notes come from billing's consumer of lease events (`billing/consumers.py`), inline
after each notice commits when Celery is eager (the demo). It acts as of the event's instant
and issues corrections only, so the notices `seed_leasing` gives in the past find nothing yet
invoiced to credit and the replayed runs above bill history at its own dates, exactly as
before the consumer existed.

Idempotent: the runs bill only what is missing and only ISSUED invoices are paid, so a second
call creates nothing. Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F

from common.contract_time import local_date
from common.progress import ProgressFn, quiet_progress
from leasing import services as leasing_services
from leasing.choices import LeaseStatus, Party
from leasing.demo import SPOT_REFERENCE
from leasing.models import Allocation, Lease

from . import planning, proration, services
from .choices import NOT_BILLED, InvoiceStatus
from .models import Invoice

RUN_TIME = dt.time(0, 10)  # the beat entry: daily at 00:10 UTC
PAYS_AFTER = dt.timedelta(days=20)


def _next_run(instant: dt.datetime) -> dt.datetime:
    """The first daily run at or after `instant`."""
    utc = instant.astimezone(dt.UTC)
    run = dt.datetime.combine(utc.date(), RUN_TIME, tzinfo=dt.UTC)
    return run if run >= utc else run + dt.timedelta(days=1)


def run_instants(*, now: dt.datetime) -> list[dt.datetime]:
    """Every past daily run that had something to bill, then `now`."""
    instants: set[dt.datetime] = set()
    leases = Lease.objects.exclude(status__in=NOT_BILLED).prefetch_related("lines")
    for lease in leases:
        lines = list(lease.lines.all())
        for period in planning.rent_periods(lease, lines):
            due = planning.rent_issue_from(lease, period)
            if due > now:
                break
            instants.add(_next_run(due))
        span = planning.holdover_span(lease, now=now)
        if span is not None:
            start, until = span
            period = proration.month_start(local_date(start, lease.contract_timezone))
            while True:
                _, p_end = proration.period_bounds(period, lease.contract_timezone)
                if p_end > now or (until is not None and p_end > until):
                    break
                instants.add(_next_run(p_end))
                period = proration.next_month(period)
    return [*sorted(i for i in instants if i < now), now]


def seed_billing(*, now: dt.datetime, progress: ProgressFn = quiet_progress) -> None:
    """Bill the demo leases up to `now` (see the module docstring). Needs the demo leases."""
    _hand_over_on_time(now=now)
    instants = run_instants(now=now)
    total = len(instants) + 1
    for done, instant in enumerate(instants, start=1):
        services.billing_run(now=instant)
        progress("billing runs", done, total)
    with transaction.atomic():
        for invoice in Invoice.objects.filter(
            status=InvoiceStatus.ISSUED, issued_at__lte=now - PAYS_AFTER
        ).order_by("pk"):
            assert invoice.issued_at is not None  # the filter above matched it
            services.invoice_mark_paid(
                invoice=invoice, paid_at=invoice.issued_at + PAYS_AFTER, now=now
            )
        services.mark_overdue(now=now)
    _spot_notice_credit(now=now)
    progress("billing runs", total, total)


def _hand_over_on_time(*, now: dt.datetime) -> None:
    """The demo's history predates hand-over records: its nodes count as accepted when their
    allocation started, as migration leasing/0010 did for the allocations that existed then
    (rent follows accepted nodes; a late hand-over is shown by `seed_fleet_money`). Only
    allocations still pending and already started are touched, so a second call does nothing."""
    Allocation.objects.filter(
        accepted_at__isnull=True, starts_at__lte=now, line__lease__reference__startswith="demo:"
    ).exclude(replacement_for__isnull=False).update(accepted_at=F("starts_at"))


def _spot_notice_credit(*, now: dt.datetime) -> None:
    """The tenant of the demo spot lease (five days' notice) gives notice now, after its current
    month was invoiced; billing's consumer credits the days after the new end as soon as the
    notice commits. The run after it finds nothing left when Celery is eager; with a broker
    it makes the credit note part of the seed without waiting for a worker. Once only."""
    lease = Lease.objects.filter(reference=SPOT_REFERENCE, notices__isnull=True).first()
    if lease is None or lease.status != LeaseStatus.ACTIVE:
        return
    leasing_services.notice_give(
        lease=lease, party=Party.TENANT, reason="Spot capacity no longer needed.", now=now
    )
    services.billing_run(now=now)
