"""Invoice details large customers require: the lease's PO number on invoices and credit notes,
the issuing entity and remittance instructions on the printed invoice."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
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


def test_documents_keep_the_po_number_they_were_issued_with(client, settings):
    """The PO number is frozen on each invoice and credit note at issue: changing the lease's
    afterwards changes neither the printed invoice nor the API; the next documents carry the
    new one; the database refuses to rewrite it on an issued document."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from billing.models import CreditNote
    from leasing.api_keys import api_key_create

    settings.API_KEY_THROTTLE_RATE = "100000/min"
    operator = User.objects.create_superuser("op", "op@example.com", "pw")
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 12, 1))
    lease_set_po_number(lease=lease, po_number="PO-OLD-1", actor=operator)
    services.billing_run(now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    december = Invoice.objects.get(lease=lease)
    assert december.po_number == "PO-OLD-1"

    lease_set_po_number(lease=lease, po_number="PO-NEW-2", actor=operator)
    services.billing_run(now=dt.datetime(2026, 12, 25, tzinfo=dt.UTC))
    january = Invoice.objects.get(lease=lease, period=dt.date(2027, 1, 1))
    lease.refresh_from_db()
    lease.effective_end = dt.datetime(2026, 12, 21, tzinfo=dt.UTC)  # credits December's end
    lease.save(update_fields=["effective_end"])
    notes = services.credit_notes_for_changes(
        lease=lease, now=dt.datetime(2026, 12, 26, tzinfo=dt.UTC)
    )
    assert notes
    assert {note.po_number for note in notes} == {"PO-NEW-2"}
    lease_set_po_number(lease=lease, po_number="PO-NEWER-3", actor=operator)

    december.refresh_from_db()
    january.refresh_from_db()
    assert (december.po_number, january.po_number) == ("PO-OLD-1", "PO-NEW-2")
    client.force_login(operator)
    page = client.get(reverse("billing:invoice_print", args=[december.pk])).content.decode()
    assert "PO-OLD-1" in page
    assert "PO-NEW" not in page
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(tenant=lease.tenant, name='k')[1]}")
    assert api.get(f"/api/v1/invoices/{december.pk}/").json()["po_number"] == "PO-OLD-1"
    assert api.get(f"/api/v1/invoices/{january.pk}/").json()["po_number"] == "PO-NEW-2"
    note = CreditNote.objects.get(pk=notes[0].pk)
    assert api.get(f"/api/v1/credit-notes/{note.pk}/").json()["po_number"] == "PO-NEW-2"

    with pytest.raises(IntegrityError, match="po_number is immutable"), transaction.atomic():
        Invoice.objects.filter(pk=december.pk).update(po_number="PO-FORGED")
    with pytest.raises(IntegrityError, match="po_number is immutable"), transaction.atomic():
        CreditNote.objects.filter(pk=note.pk).update(po_number="PO-FORGED")


def test_the_migration_fills_issued_documents_from_their_lease_then_freezes_them():
    """0011 gives the documents issued before the field existed their lease's PO number (in
    batches, through the guards: the column is not frozen yet), drafts excepted; 0012 then
    freezes it."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    if connection.vendor != "postgresql":  # SQLite cannot alter its schema inside the test's
        pytest.skip("transaction; the populated database this is for is PostgreSQL")
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 12, 1), po_number="PO-LEGACY")
    services.billing_run(now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    draft = services.invoice_draft_for_period(
        lease=lease, period=dt.date(2027, 1, 1), now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    )
    issued = Invoice.objects.get(lease=lease, period=dt.date(2026, 12, 1))
    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0010_documents_po_number")])
    Invoice.objects.filter(pk=issued.pk).update(po_number="")  # as 0010 leaves it
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Invoice.objects.get(pk=issued.pk).po_number == "PO-LEGACY"
    assert Invoice.objects.get(pk=draft.pk).po_number == ""
    with pytest.raises(IntegrityError, match="po_number is immutable"), transaction.atomic():
        Invoice.objects.filter(pk=issued.pk).update(po_number="")
