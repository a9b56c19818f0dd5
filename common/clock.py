"""The clock is an argument: services take `now=None` and resolve it here, once.

Passing `now` makes every rule testable at any instant (and lets demo data be built in the
past); a naive `now` is refused, because time is never naive here.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from .exceptions import InvalidInput


def resolve_now(now: dt.datetime | None = None) -> dt.datetime:
    """`now` if given (must be timezone-aware), else the current instant."""
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise InvalidInput("now must be timezone-aware")
    return now


def parse_instant(value: str | None) -> dt.datetime | None:
    """A task argument back into an instant: None when absent, an aware datetime otherwise.

    Tasks carry instants as ISO 8601 strings (JSON); a naive or malformed one is a bug in the
    caller and raises `ValueError` rather than being read in some zone.
    """
    if not value:
        return None
    instant = dt.datetime.fromisoformat(value)
    if timezone.is_naive(instant):
        raise ValueError(f"expected an aware ISO 8601 instant, got {value!r}")
    return instant
