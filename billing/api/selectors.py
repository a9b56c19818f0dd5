"""Reads of the billing API: the tenant's issued documents, with what the serializers read.

Drafts are internal (a draft has no number and may still change): tenants see documents
from issue on. Scoped by tenant, so another tenant's id is a 404.
"""

from __future__ import annotations

from django.db.models import Case, DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from billing.choices import CreditNoteStatus, InvoiceStatus
from billing.models import Application, CreditNote, Invoice, Payment
from common.fields import money_field
from leasing.models import Tenant


def _balance():
    """An invoice's balance: its total less what was applied to it (0 once void)."""
    applied = (
        Application.objects.filter(invoice=OuterRef("pk"))
        .order_by()
        .values("invoice")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    money = money_field()
    return Case(
        When(status=InvoiceStatus.VOID, then=Value(0, output_field=money)),
        default=F("total") - Coalesce(Subquery(applied, output_field=money), Value(0)),
        output_field=DecimalField(max_digits=18, decimal_places=2),
    )


def invoice_list_for_tenant(tenant: Tenant) -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(tenant=tenant)
        .exclude(status=InvoiceStatus.DRAFT)
        .select_related("lease")
        .annotate(balance=_balance())
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
    "balance",
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


def payment_list_for_tenant(tenant: Tenant) -> QuerySet[Payment]:
    return (
        Payment.objects.filter(tenant=tenant)
        .select_related("reversal")
        .prefetch_related("applications__invoice", "refunds")
    )
