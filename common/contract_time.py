"""Contract time: lease boundaries are local midnights in the lease's IANA zone.

Instants are stored in UTC; a lease's dates are read in its `contract_timezone`. Intervals are
half-open `[start, end)`. These helpers are the only place that turns dates into instants.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = dt.UTC


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; raises ValueError for an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@lru_cache(maxsize=1)
def timezone_choices() -> list[tuple[str, str]]:
    """Every IANA zone name, sorted, as form choices."""
    return [(name, name) for name in sorted(available_timezones())]


def local_midnight(day: dt.date, tz_name: str) -> dt.datetime:
    """The UTC instant of 00:00 local time on `day` in `tz_name`.

    Midnight exists on every day in every zone this product uses; where a zone skips midnight
    (a DST jump at 00:00), zoneinfo's fold=0 gives the instant just after the gap.
    """
    local = dt.datetime.combine(day, dt.time.min, tzinfo=zone(tz_name))
    return local.astimezone(UTC)


def local_date(instant: dt.datetime, tz_name: str) -> dt.date:
    """The calendar date of an aware instant in `tz_name`."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: instants must be timezone-aware")
    return instant.astimezone(zone(tz_name)).date()


def ceil_local_midnight(instant: dt.datetime, tz_name: str) -> dt.datetime:
    """`instant` rounded up to the next local midnight (unchanged if it is one already)."""
    day = local_date(instant, tz_name)
    midnight = local_midnight(day, tz_name)
    if midnight == instant.astimezone(UTC):
        return midnight
    return local_midnight(day + dt.timedelta(days=1), tz_name)
