"""Strict serializer fields: what DRF accepts by default that a payments-grade API must not.

- Naive datetimes: DRF silently makes them aware in the server zone; we reject them.
- Non-ASCII digits: Django's date regex accepts them; we accept ASCII digits only.
- An integer is a JSON number: not a boolean (`true` → 1), a float, or a string of digits
  (Python's `int()` reads "٨" as 8, and the schema says `integer`).
- Text must be a JSON string: DRF's `CharField` turns `0` or `1.5` into `"0"` and `"1.5"`.
  It is kept as sent (not stripped), and its OpenAPI schema says NUL is refused (DRF's
  `CharField` refuses it; PostgreSQL could not store it).

Each field's OpenAPI schema says exactly what it accepts (the fuzzer in
tests/api/test_schema.py holds the schema to that).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

NO_NUL = "^[^\\x00]+$"  # an ECMA/Python regex: not empty, no NUL character
ASCII_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


class StrictIntegerField(serializers.IntegerField):
    """An integer from a JSON number: not a bool, a float or a string."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data  # min/max validators run after this, in run_validation


class StrictDateField(serializers.DateField):
    """A `YYYY-MM-DD` date in ASCII digits."""

    default_error_messages = {"invalid": "Date has wrong format. Use YYYY-MM-DD."}

    def to_internal_value(self, value: Any) -> dt.date:
        if not isinstance(value, str) or not ASCII_DATE.match(value):
            self.fail("invalid")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail("invalid")


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 instant with an explicit offset (`Z` or `±hh:mm`); naive input is refused."""

    default_error_messages = {
        "naive": "Datetime must include a UTC offset (e.g. 2026-01-01T00:00:00Z).",
        "invalid": "Datetime has wrong format. Use ISO 8601 with an offset.",
    }

    def to_internal_value(self, value: Any) -> dt.datetime:
        if not isinstance(value, str) or not value.isascii():
            self.fail("invalid")
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail("invalid")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive")
        return parsed.astimezone(dt.UTC)


class StringOnly:
    """Accept a JSON string only; otherwise the field's `invalid` error."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(StringOnly, serializers.CharField):
    """Text from a JSON string, kept as sent."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


class StrictURLField(StringOnly, serializers.URLField):
    """A URL from a JSON string, kept as sent (surrounding spaces make it invalid)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    target_class = StrictCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema["pattern"] = NO_NUL
        return schema


class MoneyField(serializers.DecimalField):
    """Money out as a decimal string with two places (`"1250000000.00"`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value: 0 for a scalar, 1 for a flat object or list."""
    depth, level = 0, [(value, 0)]
    while level:
        item, d = level.pop()
        if isinstance(item, dict):
            level.extend((v, d + 1) for v in item.values())
            depth = max(depth, d + 1)
        elif isinstance(item, list):
            level.extend((v, d + 1) for v in item)
            depth = max(depth, d + 1)
    return depth


class BoundedJSONObjectField(serializers.JSONField):
    """A JSON object (free-form: evidence, details) bounded in size and depth, so a client
    cannot store megabytes or a deep tree in a row others read. Strings only as JSON strings
    (DRF's JSONField would also take a JSON *text* in a form post; this API has none)."""

    default_error_messages = {
        "object": "Must be a JSON object.",
        "too_large": "At most {max_bytes} bytes once encoded as JSON.",
        "too_deep": "Nested at most {max_depth} levels.",
    }

    def __init__(self, *, max_bytes: int = 8_000, max_depth: int = 4, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("object")
        if json_depth(data) > self.max_depth:
            self.fail("too_deep", max_depth=self.max_depth)
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(encoded) > self.max_bytes:
            self.fail("too_large", max_bytes=self.max_bytes)
        return data


class BoundedJSONObjectFieldSchema(OpenApiSerializerFieldExtension):
    target_class = BoundedJSONObjectField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "object",
            "additionalProperties": True,
            "description": f"A JSON object of at most {self.target.max_bytes} bytes, "
            f"nested at most {self.target.max_depth} levels.",
        }
