"""Bodies of the webhook endpoint API."""

from __future__ import annotations

from rest_framework import serializers

from common.api.fields import StrictCharField, StrictURLField
from common.api.serializers import StrictInputSerializer
from leasing.api.serializers import InstantField

from ..services import EVENT_TYPES


class WebhookEndpointInputSerializer(StrictInputSerializer):
    url = StrictURLField(max_length=500)
    description = StrictCharField(required=False, allow_blank=True, max_length=200)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        max_length=len(EVENT_TYPES),
        help_text="Event types to receive; omitted or empty = all.",
    )


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))
    is_active = serializers.BooleanField()
    created_at = InstantField()


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        help_text="Signing secret (whsec_…), shown only in this response. Verify each "
        "delivery's webhook-signature: v1,base64(HMAC-SHA256(key, id.timestamp.body))."
    )
