"""Input and output serializers of the tenant API.

Input serializers are strict (unknown fields, naive datetimes, non-ASCII digits, out-of-range
numbers and dates are errors naming the field) and hold no business rules: those are in the
services. Output serializers only read what the selectors loaded.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import cast

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api.fields import (
    MoneyField,
    StrictCharField,
    StrictDateField,
    StrictIntegerField,
)
from common.api.serializers import StrictInputSerializer
from leasing.choices import (
    LeaseStatus,
    LineStatus,
    ListingVisibility,
    NoticeOutcome,
    NoticeStatus,
    Party,
)
from leasing.models import Lease

from .selectors import (
    LeaseAction,
    NoticeAction,
    lease_actions,
    lease_available_actions,
    notice_available_actions,
    notice_cancels_renewal,
)

# Dates outside this window are refused as input: no lease, notice or quote needs them, and
# date arithmetic near year 1 or 9999 would overflow.
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)
MAX_ID = 2**63 - 1
MAX_NODES = 1_000_000


class BoundedDateField(StrictDateField):
    """A `YYYY-MM-DD` date (ASCII digits) between 2000-01-01 and 2199-12-31."""

    default_error_messages = {"range": "Must be between 2000-01-01 and 2199-12-31."}

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not MIN_DATE <= day <= MAX_DATE:
            self.fail("range")
        return day


class BoundedDateFieldSchema(OpenApiSerializerFieldExtension):
    """The years the field takes, as the schema's pattern (the format checks the date)."""

    target_class = BoundedDateField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema["pattern"] = r"^2[01][0-9]{2}-[0-9]{2}-[0-9]{2}$"
        return schema


def instant(value: dt.datetime | None) -> str | None:
    """An aware instant as ISO 8601 in UTC with `Z`."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def money(value: Decimal | None) -> str | None:
    """Money as a 2-place decimal string. Stored amounts already have two places, so this
    formats without re-rounding (input never goes through here)."""
    if value is None:
        return None
    return format(value, ".2f")


def day(value: dt.date) -> str:
    return value.isoformat()


class InstantField(serializers.DateTimeField):
    """An aware instant out as ISO 8601 in UTC with `Z` (what DRF's field renders here, at a
    fraction of its cost: list pages render thousands of these)."""

    def to_representation(self, value):
        return instant(value)


class Money(MoneyField):
    """Money out as a 2-place decimal string (see `money`)."""

    def to_representation(self, value):
        return money(value)


def IdField(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def _now(context) -> dt.datetime:
    """One clock per response, so every row of a page is judged at the same instant."""
    now = context.get("now")
    if now is None:
        now = context["now"] = timezone.now()
    return now


# --- errors -------------------------------------------------------------------------------------


# --- small references ---------------------------------------------------------------------------


class ClusterRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class SiteRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class AcceleratorRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


# --- listings -----------------------------------------------------------------------------------


class ListingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    cluster = ClusterRefSerializer()
    site = SiteRefSerializer(source="cluster.site")
    accelerator_model = AcceleratorRefSerializer(source="cluster.accelerator")
    node_count = serializers.IntegerField(help_text="Nodes offered.")
    gpus_per_node = serializers.IntegerField(source="cluster.gpus_per_node")
    gpu_count = serializers.SerializerMethodField(help_text="node_count × gpus_per_node.")
    earliest_start = serializers.DateField()
    monthly_rate_per_node = Money(help_text="Price per node per calendar month.")
    monthly_price = serializers.SerializerMethodField(
        help_text="Price of every node offered per calendar month (decimal string)."
    )
    currency = serializers.CharField()
    term_days = serializers.IntegerField()
    notice_days = serializers.IntegerField()
    contract_timezone = serializers.CharField()
    visibility = serializers.ChoiceField(choices=ListingVisibility.choices)

    def get_gpu_count(self, obj) -> int:
        return obj.node_count * obj.cluster.gpus_per_node

    @extend_schema_field(
        {"type": "string", "format": "decimal", "pattern": r"^-?\d{0,16}(?:\.\d{0,2})?$"}
    )
    def get_monthly_price(self, obj) -> str:
        return f"{obj.monthly_rate_per_node * obj.node_count:.2f}"


# --- leases -------------------------------------------------------------------------------------


class LeaseRequestInputSerializer(StrictInputSerializer):
    listing = IdField(help_text="Id of a listing offered to you.")
    node_count = StrictIntegerField(min_value=1, max_value=MAX_NODES)
    commencement_date = BoundedDateField(help_text="First day of the lease (contract zone).")


class LeaseLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cluster = ClusterRefSerializer()
    site = serializers.CharField(source="cluster.site.slug")
    node_count = serializers.IntegerField()
    monthly_rate = Money()
    status = serializers.ChoiceField(choices=LineStatus.choices)
    effective_end = InstantField(allow_null=True)


class AllocationSummarySerializer(serializers.Serializer):
    cluster = ClusterRefSerializer()
    site = serializers.CharField()
    nodes = serializers.IntegerField(help_text="Distinct nodes allocated to the lease.")


class NoticeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lease = serializers.IntegerField(source="lease_id")
    given_by = serializers.ChoiceField(choices=Party.choices)
    received_at = InstantField()
    notice_date = serializers.DateField(help_text="Local date of receipt (contract zone).")
    requested_end = InstantField(allow_null=True)
    effective_end = InstantField()
    outcome = serializers.ChoiceField(choices=NoticeOutcome.choices)
    status = serializers.ChoiceField(choices=NoticeStatus.choices)
    lines = serializers.SerializerMethodField(help_text="Line ids; empty = the whole lease.")
    reason = serializers.CharField()
    withdrawal_requested_by = serializers.CharField(
        help_text="operator or tenant when a withdrawal awaits the other party; else empty."
    )
    withdrawal_requested_at = InstantField(allow_null=True)
    withdrawn_at = InstantField(allow_null=True)
    cancels_successor = serializers.SerializerMethodField(
        help_text="Id of the lease's renewal this notice cancels (the renewal commences after "
        "the notice's effective end), else null."
    )
    available_actions = serializers.SerializerMethodField()

    def get_lines(self, obj) -> list[int]:
        return sorted(line.pk for line in obj.lines.all())

    def get_cancels_successor(self, obj) -> int | None:
        return notice_cancels_renewal(obj)

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(NoticeAction.ALL)))
    def get_available_actions(self, obj) -> list[str]:
        return notice_available_actions(obj, now=_now(self.context))


class LeaseListSerializer(serializers.ListSerializer):
    """A page of the lease list from rows of `selectors.LEASE_ROW_COLUMNS` (dicts, not models).

    Each row comes out exactly as `LeaseSerializer` renders that lease (a test compares the two
    over leases in every state), built directly: on a page of 50, DRF's per-field machinery
    costs more than the query that reads it.
    """

    def to_representation(self, data):
        now = _now(self.context)
        return [lease_row(row, now) for row in data]


def lease_row(row: dict, now: dt.datetime) -> dict:
    end = Lease.end_of(row["effective_end"], row["term_end"])
    return {
        "id": row["id"],
        "number": row["number"],
        "status": row["status"],
        "listing": row["listing_id"],
        "currency": row["currency"],
        "contract_timezone": row["contract_timezone"],
        "commencement_date": day(row["commencement_date"]),
        "commencement": instant(row["commencement"]),
        "term_end": instant(row["term_end"]),
        "effective_end": instant(row["effective_end"]),
        "end": instant(end),
        "node_count": row["api_node_count"],
        "monthly_rate": money(row["api_monthly_rate"]),
        "created_at": instant(row["created_at"]),
        "available_actions": lease_actions(
            status=row["status"],
            end=end,
            pending_withdrawal=row["api_pending_withdrawal"],
            now=now,
        ),
    }


class LeaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=LeaseStatus.choices)
    listing = serializers.IntegerField(source="listing_id", allow_null=True)
    currency = serializers.CharField()
    contract_timezone = serializers.CharField()
    commencement_date = serializers.DateField()
    commencement = InstantField()
    term_end = InstantField()
    effective_end = InstantField(
        allow_null=True, help_text="Early end set by the binding notice, if any."
    )
    end = InstantField(help_text="Effective end if set, else term end.")
    node_count = serializers.IntegerField(source="api_node_count", allow_null=True)
    monthly_rate = Money(source="api_monthly_rate", allow_null=True)
    created_at = InstantField()
    available_actions = serializers.SerializerMethodField()

    class Meta:
        list_serializer_class = LeaseListSerializer

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(LeaseAction.ALL)))
    def get_available_actions(self, obj) -> list[str]:
        return lease_available_actions(obj, now=_now(self.context))


class LeaseDetailSerializer(LeaseSerializer):
    class Meta:
        list_serializer_class = serializers.ListSerializer  # the row list is for LeaseSerializer

    term_days = serializers.IntegerField()
    notice_days = serializers.IntegerField()
    latest_useful_notice_date = serializers.SerializerMethodField()
    released_at = InstantField(allow_null=True)
    predecessor = serializers.IntegerField(source="predecessor_id", allow_null=True)
    lines = LeaseLineSerializer(many=True)
    allocation_summary = serializers.SerializerMethodField()
    notices = NoticeSerializer(many=True)

    def get_latest_useful_notice_date(self, obj) -> dt.date:
        from leasing import rules

        return rules.latest_useful_notice_date(obj.term_end, obj.notice_days, obj.contract_timezone)

    @extend_schema_field(AllocationSummarySerializer(many=True))
    def get_allocation_summary(self, obj) -> list[dict]:
        rows = AllocationSummarySerializer(self.context["allocation_summary"], many=True).data
        return cast(list[dict], rows)  # many=True: a list serializer's data (the stubs say dict)


# --- notices ------------------------------------------------------------------------------------


class NoticeInputSerializer(StrictInputSerializer):
    requested_end_date = BoundedDateField(
        required=False,
        help_text="Ask for a later end than the minimum notice (local midnight starting "
        "that day); the effective end is never earlier than the notice period allows.",
    )
    lines = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=100,
        help_text="Ids of lines of this lease; omitted or empty = the whole lease.",
    )
    reason = StrictCharField(required=False, allow_blank=True, max_length=500)


class ConfirmWithdrawalInputSerializer(StrictInputSerializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=500)
