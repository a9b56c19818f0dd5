"""The termination quote's money against billing: waived months are settled, not still due;
months voided to be re-issued are."""

import datetime as dt
from decimal import Decimal

import pytest

from billing import services
from billing.models import Invoice
from billing.selectors import lease_termination_quote
from tests.factories.billing import RATE, lease_with_lines

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def void_january(lease) -> None:
    january = Invoice.objects.get(lease=lease, kind="rent", period=dt.date(2026, 1, 1))
    services.invoice_void(invoice=january, reason="billed to the wrong entity", resolution="waive")


def test_a_voided_month_is_not_still_due():
    lease, _ = lease_with_lines(notice_days=10)  # 2026-01-01 .. 2026-06-30
    services.billing_run(now=at(2026, 2, 1, 0, 10))  # January and February invoiced
    before = lease_termination_quote(lease, notice_date=dt.date(2026, 5, 25))
    assert before.quote.holds_until == at(2026, 6, 5)
    march_to_june_4th = 3 * RATE + Decimal("166666666.67")  # + 4/30 of June
    assert (before.rent_due, before.rent_invoiced) == (2 * RATE + march_to_june_4th, 2 * RATE)
    assert before.rent_still_due == march_to_june_4th

    void_january(lease)
    after = lease_termination_quote(lease, notice_date=dt.date(2026, 5, 25))
    assert (after.rent_due, after.rent_invoiced) == (before.rent_due, RATE)
    # January keeps its slot and is never billed again: only March–June 4th is still due.
    assert (after.rent_still_due, after.credit_due) == (march_to_june_4th, Decimal("0.00"))


def test_a_voided_month_does_not_hide_a_credit_due():
    lease, _ = lease_with_lines(notice_days=10)
    services.billing_run(now=at(2026, 2, 1, 0, 10))
    before = lease_termination_quote(lease, notice_date=dt.date(2026, 2, 5))
    assert before.quote.holds_until == at(2026, 2, 16)
    feb_not_held = Decimal("580357142.86")  # 13/28 of February
    assert (before.credit_due, before.rent_still_due) == (feb_not_held, Decimal("0.00"))

    void_january(lease)
    after = lease_termination_quote(lease, notice_date=dt.date(2026, 2, 5))
    assert (after.credit_due, after.rent_still_due) == (feb_not_held, Decimal("0.00"))


def test_a_month_voided_to_be_reissued_is_still_due():
    lease, _ = lease_with_lines(notice_days=10)
    services.billing_run(now=at(2026, 2, 1, 0, 10))
    before = lease_termination_quote(lease, notice_date=dt.date(2026, 5, 25))
    january = Invoice.objects.get(lease=lease, kind="rent", period=dt.date(2026, 1, 1))
    services.invoice_void(invoice=january, reason="wrong PO number", resolution="reissue")
    after = lease_termination_quote(lease, notice_date=dt.date(2026, 5, 25))
    # The next run bills January again: its rent is still due, not settled.
    assert (after.rent_due, after.rent_invoiced) == (before.rent_due, RATE)
    assert after.rent_still_due == before.rent_still_due + RATE
    services.billing_run(now=at(2026, 2, 2, 0, 10))
    again = lease_termination_quote(lease, notice_date=dt.date(2026, 5, 25))
    assert (again.rent_invoiced, again.rent_still_due) == (2 * RATE, before.rent_still_due)
