"""Payments and cash application: the worked vector R1, partial and over-payments, credit notes,
refunds, reversals, and the database's refusal to rewrite any of it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from billing import aging, ledger, payments, services
from billing.choices import InvoiceKind, InvoiceStatus, LedgerAccount
from billing.models import Application, Invoice, Payment, Posting
from common.exceptions import InvalidInput
from leasing.choices import TenantStanding
from leasing.exceptions import TenantDelinquent
from leasing.services import lease_request
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing

pytestmark = pytest.mark.django_db
UTC = dt.UTC
M = Decimal("1000000.00")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def invoice_of(lease, period=None) -> Invoice:
    qs = Invoice.objects.filter(lease=lease, kind=InvoiceKind.RENT).order_by("period")
    return qs.get(period=period) if period else qs.get()


def r1_world():
    """A tenant with a $1,000,000.00 December invoice due 2026-12-31 (issued 12-01, net 30),
    and a second lease at $500,000.00 a month from 2027-01-01."""
    tenant = TenantFactory()
    dec, _ = lease_with_lines(
        tenant=tenant, commencement_date=dt.date(2026, 12, 1), rates=(M,), term_days=31
    )
    jan, _ = lease_with_lines(
        tenant=tenant,
        commencement_date=dt.date(2027, 1, 1),
        rates=(Decimal("500000.00"),),
        term_days=31,
    )
    services.billing_run(now=at(2026, 12, 1))
    return tenant, invoice_of(dec), jan


def test_r1_partial_payment_overpayment_and_unapplied_cash_applied_at_issue():
    tenant, invoice, jan_lease = r1_world()
    assert (invoice.total, invoice.due_at.date()) == (M, dt.date(2026, 12, 31))

    payments.payment_record(
        tenant=tenant,
        amount=Decimal("400000.00"),
        value_date=dt.date(2026, 12, 10),
        reference="WIRE-1",
        now=at(2026, 12, 10, 9),
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert payments.balance(invoice) == Decimal("600000.00")

    payments.payment_record(
        tenant=tenant,
        amount=Decimal("700000.00"),
        value_date=dt.date(2026, 12, 20),
        reference="WIRE-2",
        now=at(2026, 12, 20, 9),
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == (InvoiceStatus.PAID, at(2026, 12, 20, 9))
    assert payments.balance(invoice) == 0
    assert payments.unapplied(tenant) == (Decimal("100000.00"), 0)

    services.billing_run(now=at(2026, 12, 25))  # January in advance
    nxt = invoice_of(jan_lease)
    assert nxt.total == Decimal("500000.00")
    assert nxt.status == InvoiceStatus.PARTIALLY_PAID
    assert payments.balance(nxt) == Decimal("400000.00")
    assert payments.unapplied(tenant) == (0, 0)
    applied = Application.objects.get(invoice=nxt)
    assert (applied.amount, applied.applied_at) == (Decimal("100000.00"), at(2026, 12, 25))

    # The ledger: AR holds exactly what is owed, cash what was received, nothing unapplied.
    bal = ledger.balances()
    assert bal[LedgerAccount.AR] == Decimal("400000.00")
    assert bal[LedgerAccount.CASH] == Decimal("1100000.00")
    assert bal[LedgerAccount.CUSTOMER_CREDIT] == 0
    assert sum(bal.values()) == 0


def test_explicit_invoices_are_paid_in_the_order_named_and_others_oldest_due_first():
    tenant = TenantFactory()
    lease, _ = lease_with_lines(tenant=tenant, rates=(M,), commencement_date=dt.date(2026, 1, 1))
    services.billing_run(now=at(2026, 2, 1))  # January and February
    jan, feb = Invoice.objects.filter(lease=lease).order_by("period")
    payments.payment_record(
        tenant=tenant,
        amount=Decimal("300000.00"),
        value_date=dt.date(2026, 2, 1),
        reference="to-feb",
        invoices=[feb.pk],
        now=at(2026, 2, 1, 12),
    )
    assert payments.balances([jan, feb]) == {jan.pk: M, feb.pk: Decimal("700000.00")}
    payments.payment_record(
        tenant=tenant,
        amount=Decimal("1200000.00"),
        value_date=dt.date(2026, 2, 2),
        reference="oldest-first",
        now=at(2026, 2, 2, 12),
    )
    assert payments.balances([jan, feb]) == {jan.pk: 0, feb.pk: Decimal("500000.00")}
    statuses = list(Invoice.objects.filter(lease=lease).order_by("period").values_list("status"))
    assert statuses == [("paid",), ("partially_paid",)]


def test_refusals_write_nothing():
    tenant, invoice, _ = r1_world()
    other = TenantFactory()
    before = (Payment.objects.count(), Posting.objects.count())
    for bad in ("0", "-5", "1.001", "abc"):
        with pytest.raises(InvalidInput):
            payments.payment_record(
                tenant=tenant, amount=bad, value_date=dt.date(2026, 12, 1), reference="x"
            )
    with pytest.raises(InvalidInput):
        payments.payment_record(
            tenant=tenant, amount="5.00", value_date=dt.date(2026, 12, 1), reference=" "
        )
    with pytest.raises(payments.InvoiceNotOpen):  # another tenant's invoice
        payments.payment_record(
            tenant=other,
            amount="5.00",
            value_date=dt.date(2026, 12, 1),
            reference="x",
            invoices=[invoice.pk],
            now=at(2026, 12, 2),
        )
    assert (Payment.objects.count(), Posting.objects.count()) == before


def test_a_reversal_reopens_the_invoices_and_records_who_and_why(django_user_model):
    operator = django_user_model.objects.create_user("fin")
    tenant, invoice, _ = r1_world()
    pay = payments.payment_record(
        tenant=tenant, amount=M, value_date=dt.date(2026, 12, 5), reference="W", now=at(2026, 12, 5)
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    with pytest.raises(InvalidInput):
        payments.payment_reverse(payment=pay, reason="", actor=operator)
    rev = payments.payment_reverse(
        payment=pay, reason="Wrong tenant", actor=operator, now=at(2026, 12, 6)
    )
    assert (rev.reversed_by, rev.reason) == (operator, "Wrong tenant")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == (InvoiceStatus.ISSUED, None)
    assert payments.balance(invoice) == M
    with pytest.raises(payments.PaymentReversed):
        payments.payment_reverse(payment=pay, reason="again", now=at(2026, 12, 7))
    bal = ledger.balances()
    assert (bal[LedgerAccount.CASH], bal[LedgerAccount.AR]) == (0, M)
    # The aging as of the day it was paid still says paid; as of the next day, owed again.
    assert aging.tenant_aging(tenant, day=dt.date(2026, 12, 5)).owed == 0
    assert aging.tenant_aging(tenant, day=dt.date(2026, 12, 6)).owed == M


def test_refunds_draw_on_unapplied_money_only():
    tenant, _invoice, _ = r1_world()
    payments.payment_record(
        tenant=tenant,
        amount=Decimal("1000100.00"),
        value_date=dt.date(2026, 12, 5),
        reference="W",
        now=at(2026, 12, 5),
    )
    with pytest.raises(payments.NothingUnapplied):
        payments.refund_record(tenant=tenant, amount="100.01", reference="R", now=at(2026, 12, 6))
    (refund,) = payments.refund_record(
        tenant=tenant, amount="100.00", reference="R", now=at(2026, 12, 6)
    )
    assert refund.amount == Decimal("100.00")
    assert payments.unapplied(tenant) == (0, 0)
    assert ledger.balances()[LedgerAccount.CASH] == M


def test_a_credit_note_lowers_its_invoice_and_the_excess_becomes_credit():
    tenant = TenantFactory()
    lease, _ = lease_with_lines(
        tenant=tenant, rates=(Decimal("3100000.00"),), commencement_date=dt.date(2026, 1, 1)
    )
    services.billing_run(now=at(2026, 1, 1))
    jan = invoice_of(lease)
    payments.payment_record(
        tenant=tenant,
        amount=Decimal("3000000.00"),
        value_date=dt.date(2026, 1, 2),
        reference="W",
        now=at(2026, 1, 2),
    )
    # The lease ends on 2026-01-21: 11 days of January are credited ($1,100,000.00).
    lease.effective_end = at(2026, 1, 21)
    lease.save(update_fields=["effective_end"])
    (note,) = services.credit_notes_for_changes(lease=lease, now=at(2026, 1, 10))
    assert note.total == Decimal("1100000.00")
    jan.refresh_from_db()
    assert payments.balance(jan) == 0
    assert jan.status == InvoiceStatus.PAID
    # $100,000.00 went to pay the invoice off, $1,000,000.00 is the tenant's credit balance.
    assert payments.unapplied(tenant) == (0, Decimal("1000000.00"))
    with pytest.raises(payments.InvoiceHasPayments):
        payments.check_voidable(jan)


def test_payments_applications_refunds_and_postings_are_append_only():
    tenant, _invoice, _ = r1_world()
    payments.payment_record(
        tenant=tenant, amount=M, value_date=dt.date(2026, 12, 5), reference="W", now=at(2026, 12, 5)
    )
    for model in (Payment, Application, Posting):
        table = model._meta.db_table
        with pytest.raises(IntegrityError, match="never changed or deleted"), transaction.atomic():
            model.objects.update(id=F("id"))  # even a no-op rewrite
        with (
            pytest.raises(IntegrityError, match="never changed or deleted"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"DELETE FROM {table}")
    assert Payment.objects.count() == 1


def test_standing_is_computed_from_aging_and_a_delinquent_tenant_cannot_request():
    tenant, _invoice, _ = r1_world()  # $1M due 2026-12-31
    services.mark_overdue(now=at(2027, 1, 15))
    tenant.refresh_from_db()
    assert tenant.standing == TenantStanding.PAST_DUE
    services.mark_overdue(now=at(2027, 1, 31))  # 31 days past due
    tenant.refresh_from_db()
    assert tenant.standing == TenantStanding.DELINQUENT
    listing = published_listing(cluster_with_nodes(4), earliest_start=dt.date(2027, 1, 1))
    with pytest.raises(TenantDelinquent):
        lease_request(
            tenant=tenant,
            listing=listing,
            node_count=1,
            commencement_date=dt.date(2027, 3, 1),
            now=at(2027, 1, 31),
        )
    payments.payment_record(
        tenant=tenant, amount=M, value_date=dt.date(2027, 2, 1), reference="W", now=at(2027, 2, 1)
    )
    tenant.refresh_from_db()
    assert tenant.standing == TenantStanding.CURRENT
    lease_request(
        tenant=tenant,
        listing=listing,
        node_count=1,
        commencement_date=dt.date(2027, 3, 1),
        now=at(2027, 2, 1),
    )


def test_aging_buckets_by_days_past_due_and_reproduces_past_dates():
    tenant, _invoice, _ = r1_world()  # due 2026-12-31
    cases = {
        dt.date(2026, 12, 31): "current",
        dt.date(2027, 1, 1): "days_1_30",
        dt.date(2027, 1, 30): "days_1_30",
        dt.date(2027, 1, 31): "days_31_60",
        dt.date(2027, 3, 1): "days_31_60",
        dt.date(2027, 3, 2): "days_61_90",
        dt.date(2027, 3, 31): "days_61_90",
        dt.date(2027, 4, 1): "days_over_90",
    }
    payments.payment_record(
        tenant=tenant,
        amount=Decimal("250000.00"),
        value_date=dt.date(2027, 3, 5),
        reference="late",
        now=at(2027, 3, 5, 10),
    )
    for day, bucket in cases.items():
        row = aging.tenant_aging(tenant, day=day)
        owed = Decimal("750000.00") if day >= dt.date(2027, 3, 5) else M
        assert row.buckets[bucket] == owed, day
        assert row.owed == owed
    assert aging.tenant_aging(tenant, day=dt.date(2026, 11, 30)).owed == 0  # before issue
