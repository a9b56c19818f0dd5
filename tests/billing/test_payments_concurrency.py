"""Operators recording payments on the same invoices at once, in separate processes on
PostgreSQL: an invoice is never over-applied and the ledger stays balanced."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing import ledger, payments, services
from billing.choices import InvoiceStatus, LedgerAccount
from billing.models import Application, Invoice, Payment
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import TenantFactory
from tests.processes import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

M = Decimal("1000000.00")


def test_concurrent_payments_on_one_invoice_never_over_apply():
    tenant = TenantFactory()
    lease, _ = lease_with_lines(tenant=tenant, commencement_date=dt.date(2026, 12, 1), rates=(M,))
    services.billing_run(now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    invoice = Invoice.objects.get(lease=lease)
    workers = 6
    results = run_together(
        "tests.billing.workers",
        [["pay", str(tenant.pk), str(invoice.pk), "400000.00", f"W{i}"] for i in range(workers)],
    )
    assert all(r["ok"] for r in results), results
    assert Payment.objects.count() == workers
    applied = Application.objects.filter(invoice=invoice).aggregate(s=Sum("amount"))["s"]
    assert applied == M  # 400k + 400k + 200k, then nothing
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    cash, credit = payments.unapplied(tenant)
    assert (cash, credit) == (Decimal("400000.00") * workers - M, 0)
    bal = ledger.balances()
    assert sum(bal.values()) == 0
    assert bal[LedgerAccount.AR] == 0
    assert bal[LedgerAccount.CUSTOMER_CREDIT] == -(Decimal("400000.00") * workers - M)


def test_concurrent_oldest_first_payments_over_several_invoices():
    tenant = TenantFactory()
    for _ in range(3):
        lease_with_lines(tenant=tenant, commencement_date=dt.date(2026, 12, 1), rates=(M,))
    services.billing_run(now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    results = run_together(
        "tests.billing.workers",
        [["pay_oldest", str(tenant.pk), "700000.00", f"W{i}"] for i in range(5)],
    )
    assert all(r["ok"] for r in results), results
    for invoice in Invoice.objects.filter(tenant=tenant):
        assert payments.balance(invoice) == 0
        assert invoice.status == InvoiceStatus.PAID
    assert payments.unapplied(tenant) == (Decimal("500000.00"), 0)
    assert sum(ledger.balances().values()) == 0
