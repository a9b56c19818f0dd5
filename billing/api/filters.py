"""Filters of invoices and credit notes (strict parsing from `leasing.api.filters`)."""

from __future__ import annotations

import django_filters

from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import CreditNote, Invoice
from leasing.api.filters import (
    BooleanFilter,
    DateFilter,
    IdFilter,
    InstantFilter,
    StrictFilterSet,
)


class InvoiceFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=[c for c in InvoiceStatus.choices if c[0] != InvoiceStatus.DRAFT]
    )
    kind = django_filters.ChoiceFilter(choices=InvoiceKind.choices)
    lease = IdFilter(field_name="lease_id")
    period = DateFilter(field_name="period", help_text="First day of the month billed.")
    period_start__gte = InstantFilter(field_name="period_start", lookup_expr="gte")
    period_start__lt = InstantFilter(field_name="period_start", lookup_expr="lt")
    issued_at__gte = InstantFilter(field_name="issued_at", lookup_expr="gte")
    issued_at__lt = InstantFilter(field_name="issued_at", lookup_expr="lt")
    is_overdue = BooleanFilter()

    class Meta(StrictFilterSet.Meta):
        model = Invoice
        fields: list[str] = []


class CreditNoteFilter(StrictFilterSet):
    lease = IdFilter(field_name="lease_id")
    invoice = IdFilter(field_name="invoice_id")
    issued_at__gte = InstantFilter(field_name="issued_at", lookup_expr="gte")
    issued_at__lt = InstantFilter(field_name="issued_at", lookup_expr="lt")

    class Meta(StrictFilterSet.Meta):
        model = CreditNote
        fields: list[str] = []
