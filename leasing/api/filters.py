"""Filters of the tenant API list endpoints, with strict query parameter parsing.

django-filter's default fields accept what a payments-grade API must not (locale formats,
non-ASCII digits, decimals for ids, naive datetimes, `maybe` for a boolean, which filters
nothing). These fields take ASCII `YYYY-MM-DD` dates, ISO 8601 instants with an offset (or a
date, read as 00:00 UTC), whole ids, `true`/`false`, and text as given. Unknown, repeated and
empty parameters are refused before any filter runs (`common.api.query`). Each filter's
OpenAPI schema says exactly what it accepts.
"""

from __future__ import annotations

import datetime as dt
import re

import django_filters
from django import forms
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from common.api.fields import NO_NUL
from leasing.choices import LeaseStatus, NoticeStatus, Party
from leasing.models import Lease, Listing, Notice

from .serializers import MAX_ID

ASCII_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
ASCII_INT = re.compile(r"[0-9]{1,19}\Z")
# RFC 3339 as Python reads it: `T` and `Z` in capitals, seconds given, no leap second, an
# offset. The schema states the same pattern.
INSTANT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
INSTANT = re.compile(INSTANT_PATTERN)


class AsciiDateFormField(forms.Field):
    default_error_messages = {"invalid": "Use YYYY-MM-DD (ASCII digits)."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or not ASCII_DATE.match(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class AwareDateTimeFormField(forms.Field):
    default_error_messages = {
        "invalid": "Use an ISO 8601 instant with an offset (2026-01-01T00:00:00Z) or a date.",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or not value.isascii():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if ASCII_DATE.match(value):
            try:
                return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
            except ValueError:
                raise forms.ValidationError(self.error_messages["invalid"]) from None
        if not INSTANT.match(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="naive")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            # A valid instant within hours of year 1 or 9999 whose UTC time Python cannot
            # hold: as a bound it is the earliest or latest instant there is.
            if parsed.year == 1:
                return dt.datetime.min.replace(tzinfo=dt.UTC)
            return dt.datetime.max.replace(tzinfo=dt.UTC)


class IdFormField(forms.Field):
    default_error_messages = {"invalid": "A whole number (ASCII digits) from 1."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or not ASCII_INT.match(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class BooleanFormField(forms.Field):
    default_error_messages = {"invalid": "Use true or false."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value not in ("true", "false"):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return value == "true"


class RangeCheckedForm(forms.Form):
    """`<field>__gte`/`__gt` with `<field>__lte`/`__lt`: an upper bound before the lower one
    is an error naming the upper bound (an empty range is a client bug, not a question)."""

    def clean(self):
        data = super().clean()
        for name, lower in list(data.items()):
            base, _, op = name.rpartition("__")
            if op not in ("gte", "gt") or lower is None:
                continue
            for upper_op in ("lte", "lt"):
                upper = data.get(f"{base}__{upper_op}")
                if upper is not None and type(upper) is type(lower) and upper < lower:
                    self.add_error(f"{base}__{upper_op}", f"Must not be before {name}.")
        return data


class StrictFilterSet(django_filters.FilterSet):
    class Meta:
        form = RangeCheckedForm


@extend_schema_field(OpenApiTypes.DATE)
class DateFilter(django_filters.Filter):
    field_class = AsciiDateFormField


@extend_schema_field(
    {
        "type": "string",
        "anyOf": [
            {"format": "date-time", "pattern": INSTANT_PATTERN},
            {"format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        ],
        "description": "An instant with an offset, or a date (00:00 UTC).",
    }
)
class InstantFilter(django_filters.Filter):
    field_class = AwareDateTimeFormField


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.Filter):
    field_class = IdFormField


class BooleanFilter(django_filters.BooleanFilter):
    """`true` or `false`; anything else is an error (django-filter reads it as no filter)."""

    field_class = BooleanFormField


class TextFilter(django_filters.CharFilter):
    """Exact text, as given (not stripped: `" "` matches nothing rather than everything)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)


class FilterSchema(DjangoFilterExtension):
    """django-filter's schema, plus what a text filter takes: 1 to `max_length` characters,
    no NUL (Django's form field refuses it)."""

    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        if isinstance(filter_field, TextFilter):
            for parameter in parameters:
                parameter["schema"].update(minLength=1, pattern=NO_NUL)
                if filter_field.extra.get("max_length"):
                    parameter["schema"]["maxLength"] = filter_field.extra["max_length"]
        return parameters


class ListingFilter(StrictFilterSet):
    accelerator = TextFilter(
        field_name="cluster__accelerator__slug", max_length=32, help_text="Accelerator slug."
    )
    site = TextFilter(
        field_name="cluster__site__slug", max_length=50, help_text="Site (campus) slug."
    )
    earliest_start__gte = DateFilter(field_name="earliest_start", lookup_expr="gte")
    earliest_start__lte = DateFilter(field_name="earliest_start", lookup_expr="lte")

    class Meta(StrictFilterSet.Meta):
        model = Listing
        fields: list[str] = []


class LeaseFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=LeaseStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    commencement_date__gte = DateFilter(field_name="commencement_date", lookup_expr="gte")
    commencement_date__lte = DateFilter(field_name="commencement_date", lookup_expr="lte")
    term_end__gte = InstantFilter(field_name="term_end", lookup_expr="gte")
    term_end__lt = InstantFilter(field_name="term_end", lookup_expr="lt")

    class Meta(StrictFilterSet.Meta):
        model = Lease
        fields: list[str] = []


class NoticeFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=NoticeStatus.choices)
    given_by = django_filters.ChoiceFilter(
        choices=[(Party.OPERATOR, "Operator"), (Party.TENANT, "Tenant")]
    )

    class Meta(StrictFilterSet.Meta):
        model = Notice
        fields: list[str] = []
