"""Reads of the billing API: the tenant's issued documents, with what the serializers read.

Drafts are internal (a draft has no number and may still change): tenants see documents
from issue on. Scoped by tenant, so another tenant's id is a 404.
"""

from __future__ import annotations

from django.db.models import QuerySet

from billing.choices import CreditNoteStatus, InvoiceStatus
from billing.models import CreditNote, Invoice
from leasing.models import Tenant


def invoice_list_for_tenant(tenant: Tenant) -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(tenant=tenant)
        .exclude(status=InvoiceStatus.DRAFT)
        .select_related("lease")
    )


def invoice_detail_for_tenant(tenant: Tenant) -> QuerySet[Invoice]:
    return invoice_list_for_tenant(tenant).prefetch_related("lines")


def credit_note_list_for_tenant(tenant: Tenant) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(tenant=tenant, status=CreditNoteStatus.ISSUED).select_related(
        "lease", "invoice"
    )


def credit_note_detail_for_tenant(tenant: Tenant) -> QuerySet[CreditNote]:
    return credit_note_list_for_tenant(tenant).prefetch_related("lines")
