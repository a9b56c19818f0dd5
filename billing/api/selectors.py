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


# What a page of the invoice list reads: the columns `InvoiceListSerializer` renders, and those
# the ordering filter may sort by (the cursor reads its position from the row).
INVOICE_ROW_COLUMNS = (
    "id",
    "number",
    "lease_id",
    "lease__number",
    "kind",
    "period",
    "period_start",
    "period_end",
    "status",
    "currency",
    "total",
    "issued_at",
    "due_at",
    "paid_at",
    "is_overdue",
)


def invoice_rows_for_tenant(tenant: Tenant) -> QuerySet:
    """The invoice list as rows (dicts) of `INVOICE_ROW_COLUMNS`: a page is one query over the
    (tenant, id) index, with no model instances built."""
    return invoice_list_for_tenant(tenant).values(*INVOICE_ROW_COLUMNS)


def invoice_detail_for_tenant(tenant: Tenant) -> QuerySet[Invoice]:
    return invoice_list_for_tenant(tenant).select_related("supplements").prefetch_related("lines")


def credit_note_list_for_tenant(tenant: Tenant) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(tenant=tenant, status=CreditNoteStatus.ISSUED).select_related(
        "lease", "invoice"
    )


def credit_note_detail_for_tenant(tenant: Tenant) -> QuerySet[CreditNote]:
    return credit_note_list_for_tenant(tenant).prefetch_related("lines", "availability_report")
