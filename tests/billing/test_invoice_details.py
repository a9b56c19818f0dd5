"""Invoice details large customers require: the lease's PO number on invoices and credit notes,
the issuing entity and remittance instructions on the printed invoice."""

import datetime as dt

import pytest
from django.urls import reverse

from billing import payments, services
from billing.models import Invoice
from leasing.models import LeaseEvent
from leasing.services import lease_set_po_number
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db


def test_the_po_number_is_recorded_with_who_and_printed_with_the_issuer(client, settings):

    from django.contrib.auth.models import User

    operator = User.objects.create_superuser("op", "op@example.com", "pw")
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 12, 1))
    lease_set_po_number(lease=lease, po_number=" PO-778899 ", actor=operator)
    event = LeaseEvent.objects.get(lease=lease, kind="lease.po_number_set")
    assert (event.actor, event.data) == (operator, {"from": "", "to": "PO-778899"})
    services.billing_run(now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    invoice = Invoice.objects.get(lease=lease)
    payments.payment_record(
        tenant=lease.tenant,
        amount="1000.00",
        value_date=dt.date(2026, 12, 2),
        reference="W",
        now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
    )
    settings.BILLING_ISSUER = {
        "legal_name": "Acme Compute LLC",
        "address": "1 Main St",
        "tax_id": "EIN 12-3456789",
        "remittance": "Wire to Bank X, account 42",
    }
    client.force_login(operator)
    page = client.get(reverse("billing:invoice_print", args=[invoice.pk])).content.decode()
    for text in ("PO-778899", "Acme Compute LLC", "EIN 12-3456789", "Wire to Bank X", "Paid"):
        assert text in page
