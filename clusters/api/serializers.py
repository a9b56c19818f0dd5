"""Bodies of the operator ingestion API (`POST /api/ops/v1/health-events/`)."""

from __future__ import annotations

from rest_framework import serializers

from clusters.choices import IncidentCategory, Severity
from clusters.ingest import MAX_BATCH
from common.api.fields import AwareDateTimeField, BoundedJSONObjectField, StrictCharField
from common.api.serializers import StrictInputSerializer

MAX_DETAILS_BYTES = 2_000
MAX_DETAILS_DEPTH = 4


class HealthEventSerializer(StrictInputSerializer):
    """One observation of one node."""

    event_id = StrictCharField(
        max_length=128,
        help_text="The source's id for this event: sent again, it is applied once.",
    )
    node = StrictCharField(max_length=100, help_text="The node's hostname.")
    observed_at = AwareDateTimeField(help_text="When it was observed, with an offset.")
    severity = serializers.ChoiceField(
        choices=Severity.choices,
        help_text="`down` or `degraded` opens a monitoring incident of the category (if none "
        "is open); `ok` resolves the node's open monitoring incidents (of the category, if "
        "given).",
    )
    category = serializers.ChoiceField(
        choices=IncidentCategory.choices,
        required=False,
        help_text="Required unless severity is `ok`.",
    )
    message = StrictCharField(max_length=500, required=False, allow_blank=True)
    details = BoundedJSONObjectField(
        required=False, max_bytes=MAX_DETAILS_BYTES, max_depth=MAX_DETAILS_DEPTH
    )


class HealthEventBatchSerializer(StrictInputSerializer):
    """A batch, applied whole or refused whole (each failing item named `events[i].field`)."""

    events: serializers.ListSerializer = serializers.ListSerializer(
        child=HealthEventSerializer(), min_length=1, max_length=MAX_BATCH
    )


class HealthEventBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Events in the batch.")
    applied = serializers.IntegerField(help_text="New events stored and applied.")
    duplicates = serializers.ListField(
        child=serializers.CharField(), help_text="Event ids already received: not applied again."
    )
    incidents_opened = serializers.ListField(child=serializers.IntegerField())
    incidents_resolved = serializers.ListField(child=serializers.IntegerField())
