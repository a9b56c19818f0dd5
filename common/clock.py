"""The clock is an argument: services take `now=None` and resolve it here, once.

Passing `now` makes every rule testable at any instant (and lets demo data be built in the
past); a naive `now` is refused, because time is never naive here.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .exceptions import InvalidInput


def resolve_now(now: dt.datetime | None = None) -> dt.datetime:
    """`now` if given (must be timezone-aware), else the current instant."""
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise InvalidInput("now must be timezone-aware")
    return now


def parse_instant(value: str | None) -> dt.datetime | None:
    """An instant passed to a task as ISO 8601 text (tasks take plain values); None if empty.
    A naive or unreadable value is refused."""
    if not value:
        return None
    instant = parse_datetime(value)
    if instant is None or timezone.is_naive(instant):
        raise ValueError(f"expected an aware ISO 8601 instant, got {value!r}")
    return instant
