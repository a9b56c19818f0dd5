"""Corrections upward and voids: supplementary invoices, re-issue or waiver, and who did it.

A withdrawn notice moves an end later inside a month already invoiced: the next run bills the
difference once on a supplementary invoice referencing the month's rent invoice. A void needs a
reason and a resolution: re-issued by the next run under a new number, or waived for good.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing import services
from billing.choices import InvoiceKind, InvoiceStatus, VoidResolution
from billing.exceptions import InvoiceHasSupplements
from billing.models import CreditNote, Invoice, InvoiceLine
from common.exceptions import InvalidInput
from leasing import notices as leasing_notices
from leasing.choices import Party
from tests.factories.billing import RATE, lease_with_lines
from tests.factories.leasing import UserFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def withdraw(notice, *, now: dt.datetime) -> None:
    """The tenant asks, the operator confirms, an hour apart."""
    leasing_notices.notice_withdraw_request(notice=notice, party=Party.TENANT, now=now)
    leasing_notices.notice_withdraw_confirm(
        notice=notice, party=Party.OPERATOR, now=now + dt.timedelta(hours=1)
    )


def of_kind(lease, kind):
    return list(Invoice.objects.filter(lease=lease, kind=kind).order_by("period", "pk"))


def t2_withdrawn_and_supplemented():
    """T2's notice, April invoiced for one day on March 25th, the notice withdrawn on the 28th
    and the run of the 29th: returns the lease and its supplementary invoice."""
    lease, _ = lease_with_lines(with_nodes=True)
    notice = leasing_notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 1, 9))
    services.billing_run(now=at(2026, 3, 25, 0, 10))
    withdraw(notice, now=at(2026, 3, 28, 9))
    services.billing_run(now=at(2026, 3, 29, 0, 10))
    (supplement,) = of_kind(lease, InvoiceKind.SUPPLEMENTARY)
    return lease, supplement


def net_billed(lease) -> Decimal:
    invoiced = sum(
        Invoice.objects.filter(lease=lease)
        .exclude(status=InvoiceStatus.VOID)
        .values_list("total", flat=True),
        Decimal(0),
    )
    credited = sum(CreditNote.objects.filter(lease=lease).values_list("total", flat=True))
    return invoiced - credited


# --- supplementary invoices -----------------------------------------------------------------


def test_t2_notice_withdrawn_after_april_was_invoiced_for_one_day():
    """The review's case: T2's notice (end 2026-04-02) withdrawn on 2026-03-28 after April was
    invoiced for one day. The lease used to total $6,250,000,000.00 for good."""
    lease, _ = lease_with_lines(with_nodes=True)
    notice = leasing_notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 1, 9))
    services.billing_run(now=at(2026, 3, 25, 0, 10))  # January to April
    april = of_kind(lease, InvoiceKind.RENT)[-1]
    assert (april.period, april.total) == (dt.date(2026, 4, 1), Decimal("41666666.67"))

    withdraw(notice, now=at(2026, 3, 28, 9))
    services.billing_run(now=at(2026, 3, 29, 0, 10))
    (supplement,) = of_kind(lease, InvoiceKind.SUPPLEMENTARY)
    assert supplement.status == InvoiceStatus.ISSUED
    assert (supplement.period, supplement.supplements) == (april.period, april)
    assert supplement.cause == f"notice_withdrawn:{notice.pk}"
    assert supplement.total == Decimal("1208333333.33")  # 29/30 of April
    (line,) = supplement.lines.all()
    assert (line.service_start, line.service_end, line.days) == (
        at(2026, 4, 2),
        at(2026, 5, 1),
        29,
    )
    assert supplement.number == "INV-2026-000005"

    # Once per cause: later runs find nothing left to bill for April.
    services.billing_run(now=at(2026, 3, 30, 0, 10))
    assert len(of_kind(lease, InvoiceKind.SUPPLEMENTARY)) == 1
    services.billing_run(now=at(2026, 7, 1))
    assert net_billed(lease) == Decimal("7458333333.33")  # 1.25e9 × (5 + 29/30)


def test_a_corrected_lease_is_not_locked_again_by_runs_with_nothing_to_do(monkeypatch):
    lease, _ = t2_withdrawn_and_supplemented()

    def locked(*args, **kwargs):
        raise AssertionError("a run with nothing to do locked the lease")

    monkeypatch.setattr(services, "load_locked", locked)
    services.billing_run(now=at(2026, 3, 30, 0, 10))  # May is not due before April 24th
    assert len(of_kind(lease, InvoiceKind.SUPPLEMENTARY)) == 1


def test_a_second_withdrawal_in_the_same_month_is_billed_under_its_own_cause():
    lease, _ = lease_with_lines(with_nodes=True)
    first = leasing_notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 1, 9))
    second = leasing_notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 10, 9))
    services.billing_run(now=at(2026, 3, 25, 0, 10))  # April: one day (first notice binds)
    withdraw(first, now=at(2026, 3, 26, 9))  # the second binds: April 11th
    services.billing_run(now=at(2026, 3, 27, 0, 10))
    withdraw(second, now=at(2026, 3, 27, 9))  # nothing binds: the term end
    services.billing_run(now=at(2026, 3, 28, 0, 10))
    supplements = of_kind(lease, InvoiceKind.SUPPLEMENTARY)
    assert [(s.cause, s.lines.get().days) for s in supplements] == [
        (f"notice_withdrawn:{first.pk}", 9),
        (f"notice_withdrawn:{second.pk}", 20),
    ]
    assert sum(s.total for s in supplements) + Decimal("41666666.67") == RATE
    services.billing_run(now=at(2026, 7, 1))
    assert net_billed(lease) == Decimal("7458333333.33")


def test_a_line_extended_into_a_month_it_was_not_billed_in_at_all():
    """Line 2's notice ends it exactly at June 1st, so June is invoiced with line 1 only (no
    invoice line shows line 2 stopped short); the withdrawal must still be billed."""
    lease, (one, two) = lease_with_lines(rates=(RATE, Decimal("920000000.00")), with_nodes=True)
    notice = leasing_notices.notice_give(
        lease=lease, party=Party.TENANT, lines=[two], now=at(2026, 3, 2)
    )
    assert notice.effective_end == at(2026, 6, 1)
    services.billing_run(now=at(2026, 5, 25, 0, 10))
    june = of_kind(lease, InvoiceKind.RENT)[-1]
    assert [line.lease_line_id for line in june.lines.all()] == [one.pk]

    withdraw(notice, now=at(2026, 5, 26, 9))
    services.billing_run(now=at(2026, 5, 27, 0, 10))
    (supplement,) = of_kind(lease, InvoiceKind.SUPPLEMENTARY)
    assert supplement.supplements == june
    (line,) = supplement.lines.all()
    assert (line.lease_line_id, line.days) == (two.pk, 29)  # June 1st to the term end
    # 0.92e9 × 29/30 = 889,333,333.33…; June's lease total rounds once (…666.67), so line 2
    # takes the cent line 1 did not: .34.
    assert line.amount == Decimal("889333333.34")
    services.billing_run(now=at(2026, 7, 1))
    assert net_billed(lease) == Decimal("2170000000.00") * 5 + Decimal("2097666666.67")


def test_the_database_bills_one_supplement_per_lease_month_and_cause():
    lease, supplement = t2_withdrawn_and_supplemented()
    twin = {
        "tenant": lease.tenant,
        "lease": lease,
        "kind": InvoiceKind.SUPPLEMENTARY,
        "supplements": supplement.supplements,
        "cause": supplement.cause,
        "period": supplement.period,
        "period_start": supplement.period_start,
        "period_end": supplement.period_end,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(**twin)
    # Another cause is another slot; a supplement without its original or cause is refused.
    Invoice.objects.create(**{**twin, "cause": "adjustment:2026-03-29T00:10:00Z"})
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(**{**twin, "cause": "x", "supplements": None})
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(**{**twin, "kind": InvoiceKind.RENT, "period": dt.date(2026, 9, 1)})


# --- voids ----------------------------------------------------------------------------------


def test_a_void_needs_a_reason_and_a_resolution():
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    (january,) = of_kind(lease, InvoiceKind.RENT)
    for reason, resolution in (("", "reissue"), ("  ", "waive"), ("typo", ""), ("typo", "x")):
        with pytest.raises(InvalidInput) as refused:
            services.invoice_void(invoice=january, reason=reason, resolution=resolution)
        assert refused.value.code == "validation_error"
    january.refresh_from_db()
    assert (january.status, january.void_resolution) == (InvoiceStatus.ISSUED, "")


def test_a_reissued_month_is_billed_again_under_a_new_number_by_the_next_run():
    """Voiding used to forgive the month: it was never billed again."""
    operator = UserFactory(is_staff=True)
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    (january,) = of_kind(lease, InvoiceKind.RENT)
    voided = services.invoice_void(
        invoice=january,
        reason="billed to the wrong entity",
        resolution=VoidResolution.REISSUE,
        actor=operator,
        now=at(2026, 1, 5),
    )
    assert (voided.voided_by, voided.voided_at) == (operator, at(2026, 1, 5))
    services.billing_run(now=at(2026, 1, 6))
    old, new = of_kind(lease, InvoiceKind.RENT)
    assert (old.pk, old.status) == (january.pk, InvoiceStatus.VOID)
    assert (new.period, new.status, new.total) == (january.period, InvoiceStatus.ISSUED, RATE)
    assert new.number == "INV-2026-000002"
    assert new.issued_by is None  # the scheduler
    services.billing_run(now=at(2026, 1, 7))
    assert len(of_kind(lease, InvoiceKind.RENT)) == 2


def test_a_waived_month_is_never_billed_again_even_by_the_database():
    operator = UserFactory(is_staff=True)
    lease, _ = lease_with_lines()
    services.billing_run(now=at(2026, 1, 1))
    (january,) = of_kind(lease, InvoiceKind.RENT)
    services.invoice_void(
        invoice=january, reason="goodwill", resolution=VoidResolution.WAIVE, actor=operator
    )
    services.billing_run(now=at(2026, 1, 6))
    services.billing_run(now=at(2026, 3, 1))
    assert [i.period.month for i in of_kind(lease, InvoiceKind.RENT)] == [1, 2, 3]
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(
            tenant=lease.tenant,
            lease=lease,
            kind=InvoiceKind.RENT,
            period=january.period,
            period_start=january.period_start,
            period_end=january.period_end,
        )


def test_a_void_supplement_is_reissued_under_its_cause_and_its_original_waits_for_it():
    lease, supplement = t2_withdrawn_and_supplemented()
    april = supplement.supplements
    with pytest.raises(InvoiceHasSupplements):
        services.invoice_void(invoice=april, reason="wrong PO", resolution="reissue")

    services.invoice_void(invoice=supplement, reason="wrong PO", resolution="reissue")
    services.billing_run(now=at(2026, 3, 30, 0, 10))
    old, new = of_kind(lease, InvoiceKind.SUPPLEMENTARY)
    assert old.pk == supplement.pk
    assert (new.cause, new.total, new.status) == (old.cause, old.total, InvoiceStatus.ISSUED)
    assert new.number != old.number

    # With its supplement void (re-issue) and the re-issue void too, April itself can go: the
    # next run bills the whole month on a new rent invoice, and nothing more.
    services.invoice_void(invoice=new, reason="merge into April", resolution="reissue")
    services.invoice_void(invoice=april, reason="merge into April", resolution="reissue")
    services.billing_run(now=at(2026, 3, 31, 0, 10))
    live = Invoice.objects.filter(lease=lease, period=april.period).exclude(status="void")
    assert [(i.kind, i.total) for i in live] == [(InvoiceKind.RENT, RATE)]


def test_a_waived_supplement_is_not_billed_again():
    lease, supplement = t2_withdrawn_and_supplemented()
    services.invoice_void(invoice=supplement, reason="goodwill", resolution="waive")
    services.billing_run(now=at(2026, 3, 30, 0, 10))
    services.billing_run(now=at(2026, 7, 1))
    assert of_kind(lease, InvoiceKind.SUPPLEMENTARY) == [supplement]
    assert net_billed(lease) == Decimal("7458333333.33") - supplement.total


# --- who did it -----------------------------------------------------------------------------


def test_operator_writes_record_the_operator():
    operator = UserFactory(is_staff=True)
    lease, _ = lease_with_lines()
    draft = services.invoice_draft_for_period(lease=lease, period=dt.date(2026, 1, 1))
    issued = services.invoice_issue(invoice=draft, actor=operator, now=at(2025, 12, 26))
    paid = services.invoice_mark_paid(invoice=issued, actor=operator, now=at(2026, 1, 2))
    assert (paid.issued_by, paid.paid_by) == (operator, operator)
    services.billing_run(now=at(2026, 2, 1))
    lease.effective_end = at(2026, 2, 20)
    lease.save(update_fields=["effective_end"])
    (note,) = services.credit_notes_for_changes(lease=lease, now=at(2026, 2, 2), actor=operator)
    assert CreditNote.objects.get(pk=note.pk).issued_by == operator
    # The scheduler's documents have no actor.
    february = Invoice.objects.get(lease=lease, period=dt.date(2026, 2, 1))
    assert february.issued_by is None
    assert InvoiceLine.objects.filter(invoice=february).exists()


# --- what tenants and operators see ---------------------------------------------------------


def test_a_supplementary_invoice_names_its_original_in_the_api_and_on_paper(client):
    from leasing.api_keys import api_key_create
    from tests.api.conftest import client_for

    lease, supplement = t2_withdrawn_and_supplemented()
    april = supplement.supplements

    api = client_for(api_key_create(tenant=lease.tenant, name="t")[1])
    body = api.get(f"/api/v1/invoices/{supplement.pk}/").json()
    assert (body["kind"], body["total"]) == ("supplementary", "1208333333.33")
    assert body["supplements"] == {"id": april.pk, "number": april.number}
    assert api.get(f"/api/v1/invoices/{april.pk}/").json()["supplements"] is None

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/operator/billing/invoices/{supplement.pk}/print/").content.decode()
    assert "Supplementary invoice" in page
    assert april.number in page
