"""One way to show an instant or a day to people (operator pages, admin, titles, e-mails).

Instants: `2026-11-03 08:00 UTC` (or `2026-11-03 02:00 America/Chicago` in a contract's zone),
always with the zone named. Days: `2026-11-03`. Money has `common.money.format_money`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

EMPTY = "—"


def instant(value: dt.datetime | None, tz: str = "UTC") -> str:
    """An aware instant in `tz`, to the minute, with the zone's name."""
    if value is None:
        return EMPTY
    return f"{value.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} {tz}"


def day(value: dt.date | None) -> str:
    return EMPTY if value is None else f"{value:%Y-%m-%d}"
