"""The lease rules of docs/rules/lease.md as pure date functions.

No ORM, no clock: dates and aware instants in, dates and aware instants out, so the API, the
admin and the services all compute the same thing and tests need no database. Boundaries are
local midnights in the contract zone; intervals are half-open `[start, end)`.

- term end: `local_midnight(commencement_date + term_days)`
- notice: `min_end = local_midnight(notice_date + notice_days + 1)` (the notice day does not
  count, so every notice guarantees `notice_days` full local days);
  `effective_end = max(min_end, ceil_local_midnight(requested_end))`
- outcome: MOOT if `effective_end >= term_end`, CANCELLED if `effective_end <= commencement`,
  otherwise ENDS (the lease or the lines stop holding capacity at `effective_end`)
- latest useful notice date: `local_date(term_end) - (notice_days + 2)`
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from common.contract_time import ceil_local_midnight, local_date, local_midnight
from common.money import ZERO

from .choices import NoticeOutcome

DAY = dt.timedelta(days=1)


class LeaseLike(Protocol):
    """What the rules read from a lease (a model instance or any object with these fields).

    `quote` also reads `effective_end` when the object has it: the end earlier notices already
    bind (None while none does).
    """

    contract_timezone: str
    commencement: dt.datetime
    term_end: dt.datetime
    notice_days: int


def commencement_instant(commencement_date: dt.date, tz_name: str) -> dt.datetime:
    """The lease starts at local midnight of its commencement date."""
    return local_midnight(commencement_date, tz_name)


def term_end(commencement_date: dt.date, term_days: int, tz_name: str) -> dt.datetime:
    """`local_midnight(commencement_date + term_days)` (T1: 2026-01-01 + 180 → 2026-06-30)."""
    if term_days <= 0:
        raise ValueError("term_days must be positive")
    return local_midnight(commencement_date + dt.timedelta(days=term_days), tz_name)


def notice_date_of(received_at: dt.datetime, tz_name: str) -> dt.date:
    """The notice date is the local date of receipt (any hour of that day counts the same)."""
    return local_date(received_at, tz_name)


def notice_min_end(notice_date: dt.date, notice_days: int, tz_name: str) -> dt.datetime:
    """The earliest end a notice given on `notice_date` can have: `notice_days` full days after."""
    return local_midnight(notice_date + dt.timedelta(days=notice_days + 1), tz_name)


def notice_effective_end(
    notice_date: dt.date,
    notice_days: int,
    tz_name: str,
    requested_end: dt.datetime | None = None,
) -> dt.datetime:
    """`max(min_end, requested_end rounded up to local midnight)`; always a local midnight."""
    min_end = notice_min_end(notice_date, notice_days, tz_name)
    if requested_end is None:
        return min_end
    return max(min_end, ceil_local_midnight(requested_end, tz_name))


def notice_outcome(
    effective_end: dt.datetime, commencement: dt.datetime, term_end_at: dt.datetime
) -> NoticeOutcome:
    """MOOT if the term ends first, CANCELLED if the end is not after commencement, else ENDS."""
    if effective_end >= term_end_at:
        return NoticeOutcome.MOOT
    if effective_end <= commencement:
        return NoticeOutcome.CANCELLED
    return NoticeOutcome.ENDS


def latest_useful_notice_date(term_end_at: dt.datetime, notice_days: int, tz_name: str) -> dt.date:
    """The last notice date whose effective end still falls before the term end (T4)."""
    return local_date(term_end_at, tz_name) - dt.timedelta(days=notice_days + 2)


def holding_end(
    effective_end: dt.datetime, commencement: dt.datetime, term_end_at: dt.datetime
) -> dt.datetime:
    """When capacity stops being held under a notice: clamped into `[commencement, term_end]`.

    A cancelling notice holds nothing (`[commencement, commencement)` is empty).
    """
    return min(max(effective_end, commencement), term_end_at)


# A rent seam: billing provides the proration. Called as `rent(lease_like, start, end)` with the
# half-open holding period that remains chargeable; returns the Decimal amount due for it.
RentFn = Callable[[Any, dt.datetime, dt.datetime], Decimal]


@dataclass(frozen=True)
class Quote:
    """What a notice given on `notice_date` would do to a lease (nothing is written).

    `holds_until` is when the lease (or the noticed lines) stops holding capacity: the earliest
    valid end wins, so a notice that already binds an earlier end keeps it; `held_days` is the
    length of `[commencement, holds_until)` in local days. `rent_due` is None unless a rent
    function was given; it is zero for a cancellation.
    """

    notice_date: dt.date
    min_end: dt.datetime
    effective_end: dt.datetime
    outcome: NoticeOutcome
    commencement: dt.datetime
    term_end: dt.datetime
    holds_until: dt.datetime
    held_days: int
    latest_useful_notice_date: dt.date
    rent_due: Decimal | None = None


def quote(
    lease_like: LeaseLike,
    notice_date: dt.date,
    requested_end: dt.datetime | None = None,
    *,
    rent: RentFn | None = None,
    rent_from: dt.datetime | None = None,
) -> Quote:
    """The termination quote: effective end and outcome of a notice given on `notice_date`.

    `rent`, if given, prices `[rent_from or commencement, holds_until)` (billing's proration;
    pass `rent_from` = the start of the first period not yet invoiced for "rent still due").
    """
    tz_name = lease_like.contract_timezone
    commencement = lease_like.commencement
    term_end_at = lease_like.term_end
    min_end = notice_min_end(notice_date, lease_like.notice_days, tz_name)
    effective_end = notice_effective_end(
        notice_date, lease_like.notice_days, tz_name, requested_end
    )
    outcome = notice_outcome(effective_end, commencement, term_end_at)
    holds_until = holding_end(effective_end, commencement, term_end_at)
    bound_end = getattr(lease_like, "effective_end", None)
    if bound_end is not None:
        holds_until = min(holds_until, holding_end(bound_end, commencement, term_end_at))
    held_days = (local_date(holds_until, tz_name) - local_date(commencement, tz_name)).days
    rent_due: Decimal | None = None
    if rent is not None:
        start = max(rent_from or commencement, commencement)
        rent_due = (
            ZERO
            if outcome == NoticeOutcome.CANCELLED or start >= holds_until
            else rent(lease_like, start, holds_until)
        )
    return Quote(
        notice_date=notice_date,
        min_end=min_end,
        effective_end=effective_end,
        outcome=outcome,
        commencement=commencement,
        term_end=term_end_at,
        holds_until=holds_until,
        held_days=held_days,
        latest_useful_notice_date=latest_useful_notice_date(
            term_end_at, lease_like.notice_days, tz_name
        ),
        rent_due=rent_due,
    )
