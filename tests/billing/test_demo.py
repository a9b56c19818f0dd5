"""Demo billing: the demo leases billed up to today, exactly, and idempotently."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest

from billing import ledger, payments, planning, proration
from billing.choices import NOT_BILLED
from billing.demo import seed_billing
from billing.models import (
    BillingRun,
    CreditNote,
    Invoice,
    Payment,
    Posting,
    RecognitionRun,
    Reminder,
)
from clusters.demo import seed_inventory
from leasing.demo import seed_leasing
from leasing.models import Lease, Tenant

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)


def test_demo_bills_every_lease_up_to_now_and_a_second_seed_changes_nothing():
    seed_inventory(scale=0.01)
    seed_leasing(now=NOW)
    seed_billing(now=NOW)
    invoices = Invoice.objects.count()
    assert invoices > 0
    counts = (invoices, CreditNote.objects.count(), BillingRun.objects.count())

    # The spot lease's notice came after its month was invoiced: one credit note.
    assert (
        CreditNote.objects.filter(invoice__lease__reference="demo:helios-campus3-spot").count() == 1
    )
    billed = defaultdict(Decimal)
    for lease_id, total in Invoice.objects.filter(kind="rent").values_list("lease_id", "total"):
        billed[lease_id] += total
    # Delivery credits (the phased hand-over's nodes accepted late) are rent for node-days not
    # delivered: the accrual below counts every node from commencement.
    for lease_id, total in CreditNote.objects.exclude(kind="delivery").values_list(
        "invoice__lease_id", "total"
    ):
        billed[lease_id] -= total
    for lease in Lease.objects.exclude(status__in=NOT_BILLED):
        lines = list(lease.lines.all())
        months = [
            p
            for p in planning.rent_periods(lease, lines)
            if planning.rent_issue_from(lease, p) <= NOW
        ]
        assert Invoice.objects.filter(lease=lease, kind="rent").count() == len(months), lease
        if not months:
            continue
        # The lease's invoices less its credit notes sum to its exact accrual through the last
        # billed month, rounded once (whatever the number of lines).
        _, through = proration.period_bounds(months[-1], lease.contract_timezone)
        exact = sum(
            proration.cumulative(
                line.monthly_rate,
                life_start=lease.commencement,
                life_end=line.end,
                through=through,
                tz=lease.contract_timezone,
            )
            for line in lines
        )
        assert billed[lease.pk] == proration.to_money(exact), lease
    # Old invoices were paid by wire 20 days after issue, bar one left overdue (with its
    # reminders) and one paid in part; one tenant holds unapplied cash; revenue is recognized.
    assert Invoice.objects.filter(status="paid").exists()
    (overdue,) = Invoice.objects.filter(status="issued", issued_at__lte=NOW - dt.timedelta(days=20))
    assert overdue.is_overdue
    assert {r.step for r in overdue.reminders.all()} >= {"before_3", "after_1", "after_7"}
    assert Invoice.objects.filter(status="partially_paid").count() == 1
    assert any(payments.unapplied(t)[0] > 0 for t in Tenant.objects.all())
    assert RecognitionRun.objects.filter(day=NOW.date() - dt.timedelta(days=1)).exists()
    assert sum(ledger.balances().values()) == 0
    money = (Payment.objects.count(), Posting.objects.count(), Reminder.objects.count())

    seed_billing(now=NOW)
    assert (Invoice.objects.count(), CreditNote.objects.count(), BillingRun.objects.count()) == (
        counts
    )
    assert (Payment.objects.count(), Posting.objects.count(), Reminder.objects.count()) == money


@pytest.mark.django_db(transaction=True)  # commits run the event consumers, as in `make run`
def test_make_run_shows_wires_a_partly_paid_and_an_overdue_invoice_on_the_real_clock():
    """`make run` seeds at the real now with Celery eager: each back-dated lease activates at
    its commencement, so its months are invoiced when the schedule issued them and the demo's
    wires, partial payment, overdue invoice and reminders are there."""
    import io

    from django.core.management import call_command
    from django.utils import timezone

    from billing import aging
    from leasing.events import EventKind
    from leasing.models import LeaseEvent

    call_command("seed_demo", "--scale", "0.01", "--no-progress", stdout=io.StringIO())
    now = timezone.now()
    for lease in Lease.objects.filter(commencement__lte=now).exclude(status="scheduled"):
        activated = LeaseEvent.objects.get(lease=lease, kind=EventKind.LEASE_ACTIVATED)
        assert activated.at == lease.commencement, lease
    # Each month was invoiced when the schedule fell due (at activation, or the next daily
    # run), not at the seeding instant.
    for invoice in Invoice.objects.filter(kind="rent").select_related("lease"):
        due = max(
            planning.rent_issue_from(invoice.lease, invoice.period), invoice.lease.commencement
        )
        assert invoice.issued_at is not None
        assert due <= invoice.issued_at <= due + dt.timedelta(days=1), invoice
    assert Invoice.objects.filter(issued_at__lte=now - dt.timedelta(days=60)).exists()
    assert Invoice.objects.filter(status="paid").count() >= 5
    assert Invoice.objects.filter(status="partially_paid").count() == 1
    overdue = Invoice.objects.filter(status="issued", is_overdue=True)
    assert overdue.exists()
    assert any(
        {"before_3", "after_1", "after_7"} <= {r.step for r in inv.reminders.filter(sent=True)}
        for inv in overdue
    )
    assert Payment.objects.filter(method="wire").count() >= 5
    rows = aging.aging(day=now.date())
    past_due = aging.totals(rows.values())
    assert past_due["days_1_30"] > 0
    assert any(row.unapplied_cash > 0 for row in rows.values())
    assert sum(ledger.balances().values()) == 0
