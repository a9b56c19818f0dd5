"""Strict serializer fields: what DRF accepts by default that a payments-grade API must not.

- Naive datetimes: DRF silently makes them aware in the server zone; we reject them.
- Non-ASCII digits: Python's `int()` reads "٨" as 8, and Django's date regex accepts them too;
  we accept ASCII digits only.
- Booleans as integers (`true` → 1) and floats as integers are refused.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from rest_framework import serializers

ASCII_INT = re.compile(r"-?[0-9]+\Z")
ASCII_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


class StrictIntegerField(serializers.IntegerField):
    """An integer from a JSON number (not a bool, not a float) or a string of ASCII digits."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and ASCII_INT.match(data.strip()):
            value = int(data.strip())
        else:
            self.fail("invalid")
        return value  # min/max validators run after this, in run_validation


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


class MoneyField(serializers.DecimalField):
    """Money out as a decimal string with two places (`"1250000000.00"`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)
