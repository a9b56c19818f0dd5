"""Filters of the operator payments list (strict parsing from `leasing.api.filters`)."""

from __future__ import annotations

import django_filters

from billing.choices import PaymentMethod
from billing.models import Payment, Refund
from leasing.api.filters import (
    BooleanFilter,
    DateFilter,
    InstantFilter,
    StrictFilterSet,
    TextFilter,
)


class PaymentFilter(StrictFilterSet):
    tenant = TextFilter(field_name="tenant__slug", help_text="The tenant's slug.")
    method = django_filters.ChoiceFilter(choices=PaymentMethod.choices)
    reference = TextFilter()
    currency = TextFilter()
    reversed = BooleanFilter(
        field_name="reversal", lookup_expr="isnull", exclude=True, help_text="Reversed or not."
    )
    value_date__gte = DateFilter(field_name="value_date", lookup_expr="gte")
    value_date__lt = DateFilter(field_name="value_date", lookup_expr="lt")
    recorded_at__gte = InstantFilter(field_name="recorded_at", lookup_expr="gte")
    recorded_at__lt = InstantFilter(field_name="recorded_at", lookup_expr="lt")

    class Meta(StrictFilterSet.Meta):
        model = Payment
        fields: list[str] = []


class RefundFilter(StrictFilterSet):
    tenant = TextFilter(field_name="tenant__slug", help_text="The tenant's slug.")
    refunded_at__gte = InstantFilter(field_name="refunded_at", lookup_expr="gte")
    refunded_at__lt = InstantFilter(field_name="refunded_at", lookup_expr="lt")

    class Meta(StrictFilterSet.Meta):
        model = Refund
        fields: list[str] = []
