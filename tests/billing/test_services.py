"""Billing services: hand-worked vectors, lifecycle, credit notes, holdover, overdue."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import services
from billing.choices import InvoiceKind, InvoiceStatus
from billing.exceptions import (
    InvalidPeriod,
    InvoiceHasCreditNotes,
    InvoiceNotDraft,
    InvoiceNotIssued,
    LeaseNotBillable,
    PeriodOutsideLease,
)
from billing.models import BillingRun, CreditNote, Invoice, InvoiceLine
from billing.proration import to_money
from common.money import ZERO
from leasing import boundaries as leasing_boundaries
from leasing import notices as leasing_notices
from leasing import services as leasing_services
from leasing.choices import LeaseStatus, Party, TenantStanding
from tests.factories.billing import RATE, lease_with_lines, local

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def rent_invoices(lease):
    return list(Invoice.objects.filter(lease=lease, kind=InvoiceKind.RENT).order_by("period"))


# --- hand-worked vectors --------------------------------------------------------------------


def test_lease_starting_mid_month_is_billed_at_commencement_then_in_advance():
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 1, 15))
    assert lease.term_end == at(2026, 7, 14)
    services.billing_run(now=at(2026, 1, 14, 23, 0))
    assert rent_invoices(lease) == []  # nothing before commencement for a mid-month start

    services.billing_run(now=at(2026, 1, 15, 0, 10))
    (jan,) = rent_invoices(lease)
    assert (jan.period, jan.status, jan.number) == (
        dt.date(2026, 1, 1),
        "issued",
        "INV-2026-000001",
    )
    assert jan.total == Decimal("685483870.97")  # 1.25e9 × 17/31
    assert jan.lines.get().days == 17
    assert jan.due_at == at(2026, 2, 14, 0, 10)  # net 30

    services.billing_run(now=at(2026, 1, 24, 0, 10))
    assert len(rent_invoices(lease)) == 1  # February's window opens on January 25th
    services.billing_run(now=at(2026, 1, 25, 0, 10))
    feb = rent_invoices(lease)[1]
    assert (feb.period, feb.total, feb.number) == (dt.date(2026, 2, 1), RATE, "INV-2026-000002")

    # Catch up on everything after a long outage, then to the end of the term.
    services.billing_run(now=at(2026, 12, 1))
    invoices = rent_invoices(lease)
    assert [i.period.month for i in invoices] == [1, 2, 3, 4, 5, 6, 7]
    # July alone would round 1.25e9 × 13/31 = 524,193,548.387… to .39; cumulatively it is
    # what is left of the total after January's rounding up: .38.
    assert invoices[-1].total == Decimal("524193548.38")
    # Sum == exact accrual rounded once: 1.25e9 × (5 + 30/31).
    assert sum(i.total for i in invoices) == Decimal("7459677419.35")
    assert [i.number for i in invoices] == [f"INV-2026-{n:06d}" for n in range(1, 8)]


def test_notice_ending_mid_month_after_the_month_was_invoiced_gives_a_credit_note():
    lease, _ = lease_with_lines(notice_days=10, with_nodes=True)
    services.billing_run(now=at(2026, 3, 1, 0, 10))
    assert [i.period.month for i in rent_invoices(lease)] == [1, 2, 3]

    # Notice on March 5th with 10 notice days: ends at local midnight starting March 16th.
    leasing_notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 3, 5, 12))
    lease.refresh_from_db()
    assert lease.effective_end == at(2026, 3, 16)

    (note,) = services.credit_notes_for_changes(lease=lease, now=at(2026, 3, 5, 13))
    march = rent_invoices(lease)[2]
    assert note.invoice == march
    assert note.number == "CN-2026-000001"
    # Billed 1.25e9 for March; due now 15/31 of it (604,838,709.677… → .68).
    assert note.total == Decimal("1250000000.00") - Decimal("604838709.68")
    (credit_line,) = note.lines.all()
    assert credit_line.days == 16
    assert credit_line.service_start == at(2026, 3, 16)

    # Idempotent: nothing left to credit; no April invoice since the lease ends in March.
    assert services.credit_notes_for_changes(lease=lease, now=at(2026, 3, 6)) == []
    services.billing_run(now=at(2026, 6, 1))
    assert [i.period.month for i in rent_invoices(lease)] == [1, 2, 3]
    billed = sum(i.total for i in rent_invoices(lease)) - note.total
    assert billed == Decimal("3104838709.68")  # 1.25e9 × (2 + 15/31)


def test_notice_over_two_invoiced_months_credits_both():
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 3, 26))  # April issued in advance too
    lease.effective_end = at(2026, 3, 20)  # as a notice would set it
    lease.save(update_fields=["effective_end"])
    notes = sorted(
        services.credit_notes_for_changes(lease=lease, now=at(2026, 3, 27)),
        key=lambda n: n.invoice.period,
    )
    assert [n.invoice.period.month for n in notes] == [3, 4]
    assert notes[1].total == RATE  # April entirely
    assert notes[0].total == RATE - Decimal("766129032.26")  # March keeps 19/31


def test_line_reclaimed_while_others_continue():
    lease, (big, small) = lease_with_lines(rates=(RATE, Decimal("920000000.00")))
    services.billing_run(now=at(2026, 2, 1))
    small.effective_end = at(2026, 2, 10)  # a reclaim of that line takes effect Feb 10th
    small.save(update_fields=["effective_end"])

    run = services.billing_run(now=at(2026, 2, 2))
    assert run.credit_notes_issued == 1
    note = CreditNote.objects.get(lease=lease)
    (credit_line,) = note.lines.all()
    assert credit_line.lease_line == small
    # 0.92e9 × 9/28 = 295,714,285.714… → the line keeps 295,714,285.71 of February.
    assert note.total == Decimal("920000000.00") - Decimal("295714285.71")

    services.billing_run(now=at(2026, 3, 1))
    march = rent_invoices(lease)[2]
    assert [line.lease_line for line in march.lines.all()] == [big]
    assert march.total == RATE


def test_leap_year_february():
    lease, _ = lease_with_lines(commencement_date=dt.date(2028, 2, 10))
    services.billing_run(now=at(2028, 2, 10, 0, 10))
    (feb,) = rent_invoices(lease)
    assert feb.total == Decimal("862068965.52")  # 20/29
    line = feb.lines.get()
    assert (line.days, line.days_in_month) == (20, 29)
    assert feb.number == "INV-2028-000001"


def test_contract_zone_west_of_utc_at_a_month_boundary():
    tz = "America/Los_Angeles"
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 3, 1), tz=tz)
    assert lease.commencement == at(2026, 3, 1, 8)
    # March's window opens 7 days before local midnight of March 1st = Feb 22 08:00 UTC.
    services.billing_run(now=at(2026, 2, 22, 7, 59))
    assert rent_invoices(lease) == []
    services.billing_run(now=at(2026, 2, 22, 8, 0))
    (march,) = rent_invoices(lease)
    assert (march.period_start, march.period_end) == (at(2026, 3, 1, 8), at(2026, 4, 1, 7))
    assert march.total == RATE

    # A notice ending at local midnight of March 31st (07:00 UTC): 30 of 31 local days.
    lease.effective_end = local(dt.date(2026, 3, 31), tz)
    lease.save(update_fields=["effective_end"])
    (note,) = services.credit_notes_for_changes(lease=lease, now=at(2026, 3, 2))
    assert note.total == Decimal("40322580.65")  # one local day: 1.25e9/31
    assert note.lines.get().days == 1


def test_holdover_billed_in_arrears_at_150_percent_until_release():
    lease, _ = lease_with_lines(term_days=59)  # ends 2026-03-01
    assert lease.term_end == at(2026, 3, 1)
    services.billing_run(now=at(2026, 3, 20))
    assert not Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER).exists()

    services.billing_run(now=at(2026, 4, 1, 0, 10))
    (march,) = Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER)
    assert march.total == Decimal("1875000000.00")  # 31 days × 150 % × rate/31

    lease.released_at = at(2026, 4, 3, 10)  # the 3rd counts as a started day
    lease.save(update_fields=["released_at"])
    services.billing_run(now=at(2026, 4, 3, 12))
    april = Invoice.objects.get(lease=lease, kind=InvoiceKind.HOLDOVER, period=dt.date(2026, 4, 1))
    assert april.total == Decimal("187500000.00")  # 3/30 × 150 % × 1.25e9
    services.billing_run(now=at(2026, 6, 1))
    assert Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER).count() == 2


def test_no_holdover_when_released_within_the_grace():
    lease, _ = lease_with_lines(term_days=59, released_at=at(2026, 3, 1, 20))
    services.billing_run(now=at(2026, 5, 1))
    assert not Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER).exists()
    assert len(rent_invoices(lease)) == 2


def test_draft_and_void_leases_are_never_billed_and_cancelled_accrues_nothing():
    draft, _ = lease_with_lines(status=LeaseStatus.DRAFT)
    void, _ = lease_with_lines(status=LeaseStatus.VOID)
    cancelled, _ = lease_with_lines(status=LeaseStatus.CANCELLED)
    cancelled.effective_end = cancelled.commencement
    cancelled.save(update_fields=["effective_end"])
    services.billing_run(now=at(2026, 3, 1))
    assert not Invoice.objects.filter(lease__in=[draft, void, cancelled]).exists()
    with pytest.raises(LeaseNotBillable):
        services.invoice_draft_for_period(lease=draft, period=dt.date(2026, 1, 1))


def test_scheduled_lease_invoiced_in_advance_then_cancelled_is_credited_in_full():
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 4, 1), status="scheduled")
    services.billing_run(now=at(2026, 3, 25))
    (april,) = rent_invoices(lease)
    lease.effective_end = lease.commencement
    lease.status = LeaseStatus.CANCELLED
    lease.save(update_fields=["effective_end", "status"])
    services.billing_run(now=at(2026, 3, 26))
    note = CreditNote.objects.get(lease=lease)
    assert (note.invoice, note.total) == (april, april.total)


# --- documents ------------------------------------------------------------------------------


def test_draft_then_issue_void_and_pay():
    lease, _ = lease_with_lines()
    draft = services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 2, 1))
    assert (draft.status, draft.number, draft.total) == ("draft", None, RATE)
    again = services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 2, 1))
    assert again.pk == draft.pk
    assert InvoiceLine.objects.filter(invoice=draft).count() == 1

    issued = services.invoice_issue(invoice=draft, now=at(2026, 1, 20))
    assert (issued.status, issued.number) == ("issued", "INV-2026-000001")
    with pytest.raises(InvoiceNotDraft):
        services.invoice_issue(invoice=issued)
    # The draft-for-period service returns the issued invoice as it is.
    assert services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 2, 1)) == issued

    paid = services.invoice_mark_paid(invoice=issued, now=at(2026, 1, 30))
    assert (paid.status, paid.paid_at) == ("paid", at(2026, 1, 30))
    with pytest.raises(InvoiceNotIssued):
        services.invoice_void(invoice=paid, reason="duplicate", resolution="reissue")

    services.billing_run(now=at(2026, 2, 1))
    jan = Invoice.objects.get(lease=lease, period=dt.date(2026, 1, 1))
    voided = services.invoice_void(
        invoice=jan, reason="billed to the wrong entity", resolution="waive"
    )
    assert voided.status == "void"
    # A waived void keeps the month's slot: the run does not bill January again.
    services.billing_run(now=at(2026, 2, 2))
    assert Invoice.objects.filter(lease=lease, period=dt.date(2026, 1, 1)).count() == 1
    with pytest.raises(InvalidPeriod):
        services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 2, 2))
    with pytest.raises(PeriodOutsideLease):
        services.invoice_draft_for_period(lease=lease, period=dt.date(2027, 2, 1))


def test_a_credited_invoice_cannot_be_voided():
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    lease.effective_end = at(2026, 1, 20)
    lease.save(update_fields=["effective_end"])
    services.billing_run(now=at(2026, 1, 2))
    with pytest.raises(InvoiceHasCreditNotes):
        services.invoice_void(
            invoice=rent_invoices(lease)[0], reason="wrong entity", resolution="reissue"
        )


def test_issued_invoice_is_immutable_in_the_service():
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    (invoice,) = rent_invoices(lease)
    with pytest.raises(InvoiceNotDraft):
        services.invoice_issue(invoice=invoice, now=at(2026, 1, 2))
    lease.effective_end = at(2026, 1, 20)
    lease.save(update_fields=["effective_end"])
    # Asking for the month's draft again returns the issued invoice untouched.
    assert services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 1, 1)) == invoice
    invoice.refresh_from_db()
    assert (invoice.total, invoice.number) == (RATE, "INV-2026-000001")


@pytest.mark.postgres
def test_issued_invoice_is_immutable_in_the_database():
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    lease.effective_end = at(2026, 1, 20)
    lease.save(update_fields=["effective_end"])
    services.billing_run(now=at(2026, 1, 2))
    (invoice,) = rent_invoices(lease)
    note = CreditNote.objects.get()
    forbidden = [
        lambda: Invoice.objects.filter(pk=invoice.pk).update(total=Decimal("1.00")),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(number="INV-2026-999999"),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(period_end=at(2026, 3, 1)),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.DRAFT),
        lambda: _sql("DELETE FROM billing_invoice WHERE id = %s", invoice.pk),
        lambda: InvoiceLine.objects.filter(invoice=invoice).update(amount=Decimal("1.00")),
        lambda: _sql("DELETE FROM billing_invoiceline WHERE invoice_id = %s", invoice.pk),
        lambda: InvoiceLine.objects.create(
            invoice=invoice,
            lease_line=invoice.lines.get().lease_line,
            description="x",
            service_start=at(2026, 1, 1),
            service_end=at(2026, 1, 1),
            days=0,
            days_in_month=31,
            monthly_rate=0,
            amount=0,
        ),
        lambda: CreditNote.objects.filter(pk=note.pk).update(total=Decimal("1.00")),
        lambda: note.lines.update(amount=Decimal("1.00")),
    ]
    for attempt in forbidden:
        with (
            pytest.raises(IntegrityError, match=r"immutable|deleted|not allowed"),
            transaction.atomic(),
        ):
            attempt()
    # Allowed: the overdue flag, and ISSUED → PAID.
    Invoice.objects.filter(pk=invoice.pk).update(is_overdue=True)
    services.invoice_mark_paid(invoice=invoice, now=at(2026, 1, 5))
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.VOID)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total) == ("paid", RATE)
    assert connection.vendor == "postgresql"


def _sql(statement: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_numbers_are_gapless_per_kind_and_year():
    leases = [lease_with_lines(commencement_date=dt.date(2026, 12, 1))[0] for _ in range(3)]
    services.billing_run(now=at(2026, 12, 1))
    services.billing_run(now=at(2027, 1, 1))
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [
        "INV-2026-000001",
        "INV-2026-000002",
        "INV-2026-000003",
        "INV-2027-000001",
        "INV-2027-000002",
        "INV-2027-000003",
    ]
    assert len(leases) == 3


def test_mark_overdue_and_tenant_standing():
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    outcome = services.mark_overdue(now=at(2026, 1, 31))
    assert outcome.newly_overdue == 0
    outcome = services.mark_overdue(now=at(2026, 2, 1))
    assert (outcome.newly_overdue, outcome.tenants_past_due) == (1, 1)
    lease.tenant.refresh_from_db()
    assert lease.tenant.standing == TenantStanding.PAST_DUE
    assert services.mark_overdue(now=at(2026, 2, 2)).newly_overdue == 0  # safe to run twice

    services.invoice_mark_paid(invoice=rent_invoices(lease)[0], now=at(2026, 2, 3))
    lease.tenant.refresh_from_db()
    assert lease.tenant.standing == TenantStanding.CURRENT


# --- runs -----------------------------------------------------------------------------------


def test_run_twice_changes_nothing_and_counts_what_it_did():
    for _ in range(3):
        lease_with_lines()
    first = services.billing_run(now=at(2026, 2, 1))
    assert (first.status, first.invoices_issued, first.leases_scanned) == ("done", 6, 3)
    again = services.billing_run(now=at(2026, 2, 1, 1))
    assert again.pk == first.pk
    assert again.invoices_issued == 6
    assert Invoice.objects.count() == 6
    assert BillingRun.objects.count() == 1


def test_run_queries_do_not_grow_with_the_number_of_leases():
    def run_queries(count: int, month: dt.date) -> int:
        for _ in range(count):
            lease_with_lines(commencement_date=month, rates=(RATE, Decimal("1000.00")))
        with CaptureQueriesContext(connection) as ctx:
            services.billing_run(now=local(month), chunk_size=1000)
        return len(ctx.captured_queries)

    small = run_queries(2, dt.date(2026, 1, 1))
    # 40 more leases, and the first two catch up on four months meanwhile.
    large = run_queries(40, dt.date(2026, 5, 1))
    assert Invoice.objects.count() == 2 * 5 + 40
    # + the ledger postings, revenue schedules and an unapplied-money check; + the delivery
    # credits read of accepted node-time.
    assert small <= 38
    assert large <= small


def test_rent_due_for_a_lease_matches_what_the_invoices_will_say():
    lease, _ = lease_with_lines(rates=(RATE, Decimal("920000000.00")))
    due = services.lease_rent_due(lease, at(2026, 3, 1), at(2026, 4, 16))
    services.billing_run(now=at(2026, 4, 1))
    lease.effective_end = at(2026, 4, 16)
    lease.save(update_fields=["effective_end"])
    services.billing_run(now=at(2026, 4, 2))
    billed = sum(
        i.total for i in Invoice.objects.filter(lease=lease, period__gte=dt.date(2026, 3, 1))
    ) - sum(n.total for n in CreditNote.objects.filter(lease=lease))
    assert due == billed


def test_a_lease_is_rounded_once_not_once_per_line():
    # Two lines of 24.01 from April 16th: each accrues 12.005 exactly. Rounded per line that
    # would bill 24.02; the lease's exact accrual is 24.01 and that is what is billed.
    lease, (first, second) = lease_with_lines(
        commencement_date=dt.date(2026, 4, 16), rates=(Decimal("24.01"), Decimal("24.01"))
    )
    services.billing_run(now=at(2026, 4, 16))
    (april,) = rent_invoices(lease)
    assert april.total == Decimal("24.01")
    assert [line.amount for line in april.lines.order_by("lease_line_id")] == [
        Decimal("12.01"),
        Decimal("12.00"),
    ]
    # The second line ends with April: the credit brings the lease back to its exact accrual.
    services.billing_run(now=at(2026, 4, 25))
    second.effective_end = at(2026, 5, 1)
    second.save(update_fields=["effective_end"])
    first.effective_end = at(2026, 5, 16)
    first.save(update_fields=["effective_end"])
    services.billing_run(now=at(2026, 4, 26))
    invoiced = sum(i.total for i in rent_invoices(lease))
    credited = sum(n.total for n in CreditNote.objects.filter(lease=lease))
    # 12.005 + 12.005 (April) + 24.01 × 15/31 (first line's May) = 35.6277… → 35.63
    assert invoiced - credited == Decimal("35.63")


# --- holdover corrected by a backdated release ----------------------------------------------


def holdover_due(rates, days: int, days_in_month: int) -> Decimal:
    """Holdover of a lease's lines over `days` of one month, rounded once (lease-level)."""
    exact = sum(Fraction(rate) * Fraction(3, 2) * days / days_in_month for rate in rates)
    return to_money(exact)


def net_billed(lease) -> Decimal:
    invoiced = sum(Invoice.objects.filter(lease=lease).values_list("total", flat=True), ZERO)
    credited = sum(CreditNote.objects.filter(lease=lease).values_list("total", flat=True), ZERO)
    return invoiced - credited


def test_backdated_release_after_holdover_billed_is_credited_once():
    lease, _ = lease_with_lines(term_days=59)  # ends 2026-03-01
    leasing_boundaries.process_boundaries(now=at(2026, 3, 3))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.HOLDOVER
    services.billing_run(now=at(2026, 4, 1, 0, 10))
    (march,) = Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER)
    assert march.total == Decimal("1875000000.00")  # the whole of March, still held

    # On April 2nd the operator confirms the nodes were back on March 5th, 09:00.
    leasing_services.lease_release_confirm(
        lease=lease, released_at=at(2026, 3, 5, 9), now=at(2026, 4, 2)
    )
    services.billing_run(now=at(2026, 4, 3, 0, 10))

    five_days = holdover_due([RATE], 5, 31)  # March 1st–5th, the 5th a started day
    assert five_days == Decimal("302419354.84")
    (note,) = CreditNote.objects.filter(lease=lease)
    assert (note.invoice_id, note.status) == (march.pk, "issued")
    assert note.total == march.total - five_days
    line = note.lines.get()
    assert (line.days, line.service_start, line.service_end) == (26, at(2026, 3, 6), at(2026, 4, 1))
    assert net_billed(lease) == 2 * RATE + five_days  # January and February rent + holdover

    # Idempotent: later runs and the per-lease computation find nothing left to credit.
    services.billing_run(now=at(2026, 4, 3, 0, 20))
    services.billing_run(now=at(2026, 6, 1))
    assert services.credit_notes_for_changes(lease=lease, now=at(2026, 6, 2)) == []
    assert CreditNote.objects.filter(lease=lease).count() == 1
    assert Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER).count() == 1
    assert net_billed(lease) == 2 * RATE + five_days


def test_backdated_release_credits_holdover_over_several_months_and_lines():
    rates = (RATE, Decimal("920000000.01"), Decimal("333.33"))
    lease, _ = lease_with_lines(term_days=59, rates=rates)  # ends 2026-03-01
    services.billing_run(now=at(2026, 5, 1, 0, 10))  # March and April holdover billed in full
    assert Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER).count() == 2
    rent = sum(Invoice.objects.filter(lease=lease, kind="rent").values_list("total", flat=True))

    lease.refresh_from_db()
    lease.released_at = at(2026, 3, 10, 9)  # held March 1st–10th
    lease.save(update_fields=["released_at"])
    notes = services.credit_notes_for_changes(lease=lease, now=at(2026, 5, 2))
    assert len(notes) == 2  # one per holdover invoice
    assert net_billed(lease) == rent + holdover_due(rates, 10, 31)
    for note in notes:  # no line credits more than its invoice line billed
        for line in note.lines.select_related("invoice_line"):
            assert 0 < line.amount <= line.invoice_line.amount

    services.billing_run(now=at(2026, 5, 2, 0, 10))
    assert CreditNote.objects.filter(lease=lease).count() == 2
    assert net_billed(lease) == rent + holdover_due(rates, 10, 31)


def test_release_backdated_into_the_grace_credits_all_holdover():
    lease, _ = lease_with_lines(term_days=59)  # ends 2026-03-01, 24 hours' grace
    services.billing_run(now=at(2026, 4, 1, 0, 10))
    (march,) = Invoice.objects.filter(lease=lease, kind=InvoiceKind.HOLDOVER)
    lease.refresh_from_db()
    lease.released_at = at(2026, 3, 1, 20)
    lease.save(update_fields=["released_at"])
    services.billing_run(now=at(2026, 4, 2))
    (note,) = CreditNote.objects.filter(lease=lease)
    assert note.total == march.total
    assert net_billed(lease) == 2 * RATE
    services.billing_run(now=at(2026, 4, 3))
    assert CreditNote.objects.filter(lease=lease).count() == 1


def test_invoice_issue_recomputes_the_draft_from_the_lease_as_it_stands():
    lease, _ = lease_with_lines()
    draft = services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 2, 1))
    assert draft.total == RATE
    lease.effective_end = at(2026, 2, 15)  # a notice moved the end after the draft was made
    lease.save(update_fields=["effective_end"])
    issued = services.invoice_issue(invoice=draft, now=at(2026, 1, 20))
    assert issued.total == Decimal("625000000.00")  # 14/28 of February
    line = InvoiceLine.objects.get(invoice=issued)
    assert (line.days, line.amount, line.service_end) == (14, issued.total, at(2026, 2, 15))


def test_invoice_issue_locks_the_lease_before_the_invoice():
    lease, _ = lease_with_lines()
    draft = services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 2, 1))
    with CaptureQueriesContext(connection) as ctx:
        services.invoice_issue(invoice=draft, now=at(2026, 1, 20))
    sqls = [q["sql"] for q in ctx.captured_queries]

    def first(pred):
        return next(i for i, sql in enumerate(sqls) if pred(sql))

    lease_lock = first(
        lambda sql: "leasing_lease" in sql and ("FOR UPDATE" in sql or sql.startswith("UPDATE"))
    )
    invoice_lock = first(lambda sql: '"billing_invoice"."status"' in sql and f"= {draft.pk}" in sql)
    assert lease_lock < invoice_lock
