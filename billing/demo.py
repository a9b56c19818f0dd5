"""Demo billing on top of the demo leases (`leasing.demo.seed_leasing`).

Bills the demo leases up to `now` the way the product would have. Each lease was activated at
its commencement (`leasing.demo.replay_boundaries`), where billing's consumer of the activation
invoiced what was due then; the daily billing run is replayed at 00:10 UTC on every day
something fell due (each month's invoice 7 days before the
month in the contract zone, first partial months at commencement, holdover months once over),
then once more at `now`. Tenants are then shown as paying by wire 20 days after issue (each
wire recorded that day and applied to its invoice), except: one invoice paid in part (40 %),
one left unpaid past its due date with its reminders sent (console e-mail backend), and one
tenant's wire larger than its invoice (unapplied cash, consumed by its next invoice). What is
not yet 20 days old stays open; overdue marking, dunning and revenue recognition run at `now`.

Credit notes come from billing's consumer of lease events (`billing/consumers.py`), inline
after each notice commits when Celery is eager (the demo). It acts as of the event's instant
and issues corrections only, so the notices `seed_leasing` gives in the past find nothing yet
invoiced to credit and the replayed runs above bill history at its own dates, exactly as
before the consumer existed.

Idempotent: the runs bill only what is missing, only invoices with no payment are paid, each
day is recognized once and each reminder sent once, so a second call creates nothing. Works on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from common.contract_time import local_date
from common.progress import ProgressFn, quiet_progress
from leasing import services as leasing_services
from leasing.acceptance import demo_accept_on_time
from leasing.choices import LeaseStatus, Party
from leasing.demo import SPOT_REFERENCE
from leasing.models import Lease

from . import dunning, ledger, payments, planning, proration, services
from .choices import NOT_BILLED, ContactRole, InvoiceStatus, PaymentMethod
from .models import Contact, Invoice, Payment

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
    # Rent follows accepted nodes; a late hand-over is shown by `seed_fleet_money`.
    demo_accept_on_time(now=now)
    instants = run_instants(now=now)
    total = len(instants) + 1
    for done, instant in enumerate(instants, start=1):
        services.billing_run(now=instant)
        progress("billing runs", done, total)
    _seed_receivables(now=now)
    _spot_notice_credit(now=now)
    progress("billing runs", total, total)


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


def _seed_receivables(*, now: dt.datetime) -> None:
    """Wires for the invoices 20 days old, bar the partly paid and the overdue one; contacts;
    reminders; revenue recognized through yesterday."""
    for tenant_id in Invoice.objects.values_list("tenant_id", flat=True).distinct():
        Contact.objects.get_or_create(
            tenant_id=tenant_id,
            role=ContactRole.BILLING,
            email=f"accounts-payable+{tenant_id}@tenant.example",
        )
        Contact.objects.get_or_create(
            tenant_id=tenant_id, role=ContactRole.LEGAL, email=f"legal+{tenant_id}@tenant.example"
        )
    if Payment.objects.exists():
        unpaid = Invoice.objects.none()  # paid on an earlier call
    else:
        unpaid = Invoice.objects.filter(
            status=InvoiceStatus.ISSUED, issued_at__lte=now - PAYS_AFTER, total__gt=0
        ).order_by("issued_at", "pk")
    rows = list(unpaid.select_related("tenant"))
    # Left open: the most recent invoice past due by at least a week (its reminders go out),
    # and the one before it is paid in part.
    overdue = next(
        (i for i in reversed(rows) if i.due_at and i.due_at <= now - dt.timedelta(days=8)), None
    )
    partial = next((i for i in reversed(rows) if i is not overdue), None)
    overpaid = next((i for i in rows if i not in (overdue, partial)), None)
    for invoice in rows:
        if invoice is overdue:
            continue
        assert invoice.issued_at is not None  # issued
        paid_at = invoice.issued_at + PAYS_AFTER
        amount = invoice.total
        if invoice is partial:
            amount = (invoice.total * 4 / 10).quantize(invoice.total)
        elif invoice is overpaid:
            amount = invoice.total + 250_000
        payments.payment_record(
            tenant=invoice.tenant,
            amount=amount,
            value_date=paid_at.date(),
            reference=f"WIRE-{invoice.number}",
            method=PaymentMethod.WIRE,
            currency=invoice.currency,
            invoices=[invoice.pk],
            now=paid_at,
        )
    services.mark_overdue(now=now)
    if overdue is not None and overdue.due_at is not None:
        # Replay the dunning job on the days its reminders fell due, then today.
        for offset in (-3, 1, 7):
            day = overdue.due_at + dt.timedelta(days=offset)
            if day <= now:
                dunning.send_reminders(now=day)
    dunning.send_reminders(now=now)
    ledger.recognize_due(now=now)
