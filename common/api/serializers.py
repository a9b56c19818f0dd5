"""Input serializers that refuse what they do not know."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every error: a message, a stable snake_case code, structured details.

    Validation errors list field messages under `extra.fields` (field name → messages)."""

    detail = serializers.CharField()
    code = serializers.CharField()
    extra = serializers.DictField(child=serializers.JSONField())


class StrictInputSerializer(serializers.Serializer):
    """An input serializer: unknown fields are an error, not silently dropped.

    A client that misspells `requested_end_date` must hear about it rather than get a notice
    with no requested end.
    """

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}, code="invalid"
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in unknown}, code="unknown_field"
            )
        return super().to_internal_value(data)


class StrictInputSerializerSchema(OpenApiSerializerExtension):
    """The schema of a strict input says so: `additionalProperties: false`. Described by its
    own docstring only (not this base's)."""

    target_class = StrictInputSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        if not type(self.target).__dict__.get("__doc__"):
            schema.pop("description", None)
        return schema
