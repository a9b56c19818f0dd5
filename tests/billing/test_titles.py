"""Receivables and ledger rows are titled by document numbers, tenant names and money with its
symbol, never by database ids or bare decimals (admin pages, messages and history show them)."""

import datetime as dt
from decimal import Decimal

from billing.choices import LedgerAccount, PostingKind, ReminderStep
from billing.models import (
    AvailabilityReport,
    CreditNote,
    Invoice,
    Payment,
    PaymentReversal,
    Posting,
    Refund,
    Reminder,
    RevenueSchedule,
)
from leasing.models import Lease, Tenant

TENANT = Tenant(pk=41, name="Northwind AI")
LEASE = Lease(pk=42, number="L-2026-0003", tenant=TENANT)
INVOICE = Invoice(pk=43, number="INV-2026-00017", lease=LEASE, tenant=TENANT, currency="USD")
PAYMENT = Payment(pk=44, reference="WIRE-881", amount=Decimal("1234.50"), currency="USD")


def test_refund_and_reversal_name_the_payment_the_tenant_and_the_money():
    refund = Refund(
        pk=45, tenant=TENANT, payment=PAYMENT, amount=Decimal("1234.50"), reference="RF-9"
    )
    assert str(refund) == "Refund RF-9 to Northwind AI ($1,234.50)"
    assert (
        str(PaymentReversal(pk=46, payment=PAYMENT)) == "Reversal of Payment WIRE-881 ($1,234.50)"
    )


def test_refund_from_a_credit_note_takes_its_currency():
    note = CreditNote(pk=47, number="CN-2026-00002", invoice=INVOICE, currency="EUR")
    refund = Refund(tenant=TENANT, credit_note=note, amount=Decimal("99000"), reference="RF-10")
    assert str(refund) == "Refund RF-10 to Northwind AI (99,000.00 EUR)"


def test_ledger_rows_name_accounts_tenant_document_and_money():
    posting = Posting(
        pk=48,
        day=dt.date(2026, 12, 1),
        kind=PostingKind.INVOICE,
        debit=LedgerAccount.AR,
        credit=LedgerAccount.DEFERRED,
        amount=Decimal("1250000"),
        currency="USD",
        tenant=TENANT,
        invoice=INVOICE,
    )
    assert str(posting) == (
        "2026-12-01 Invoice issued · Northwind AI: "
        "Accounts receivable / Deferred revenue $1,250,000.00"
    )
    schedule = RevenueSchedule(
        pk=49,
        tenant=TENANT,
        invoice=INVOICE,
        amount=Decimal("31000"),
        recognized=Decimal("1000.5"),
        service_start=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        service_end=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    )
    assert str(schedule) == (
        "Revenue of INV-2026-00017, 2026-12-01 to 2027-01-01: $1,000.50 of $31,000.00 recognized"
    )


def test_reminder_and_availability_name_the_invoice_and_the_lease():
    reminder = Reminder(pk=50, invoice=INVOICE, step=ReminderStep.AFTER_7)
    assert str(reminder) == "Reminder on INV-2026-00017, 7 days past due"
    report = AvailabilityReport(pk=51, lease=LEASE, tenant=TENANT, period=dt.date(2026, 11, 1))
    assert str(report) == "Availability of L-2026-0003 · Northwind AI, November 2026"
