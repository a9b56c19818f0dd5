"""Exact proration of monthly rent by calendar months in the contract time zone.

Pure functions: no ORM, no settings. Everything here is exact (`fractions.Fraction`) until the
single rounding step, `common.money.round_money` (half-up to the cent).

The rule (docs/rules/billing.md, "Proration" and "Rounding once, per lease"):

* Rent accrues per calendar month of the contract time zone. A full month costs exactly the
  monthly rate; a partial month costs `rate × days / days_in_month`, counting local calendar
  days (a day that is 23 or 25 hours long because of a DST change is still one day).
* Boundaries are local midnights and intervals are half-open `[start, end)`.
* The amount billed for a period is `round(cum(period_end)) − round(cum(period_start))`, where
  `cum(t)` is the exact accrual of the line from the start of its billable life up to `t`. The
  sum of the amounts of consecutive periods telescopes to `round(cum(last_end))`: a lease's
  invoices always add up to its exact accrual rounded once. Invoices apply it per lease, not
  per line (`billing.planning.rent_split`), from the exact accruals computed here.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

from common.contract_time import local_date, local_midnight
from common.money import round_money

Instant = dt.datetime
# The holdover rate (docs/rules/billing.md, "Holdover"): 150 % of the per-diem.
HOLDOVER_MULTIPLIER = Fraction(3, 2)


def month_start(day: dt.date) -> dt.date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after `day`'s month."""
    first = month_start(day)
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


def days_in_month(day: dt.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def months_between(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    """First days of every month from `first`'s month through `last`'s month, inclusive."""
    current = month_start(first)
    while current <= last:
        yield current
        current = next_month(current)


@lru_cache(maxsize=4096)
def period_bounds(period: dt.date, tz: str) -> tuple[Instant, Instant]:
    """The instants `[start, end)` of the calendar month `period` in zone `tz`."""
    return local_midnight(month_start(period), tz), local_midnight(next_month(period), tz)


def _as_local_day(value: Instant | dt.date, tz: str) -> dt.date:
    """A boundary as a local calendar date; instants must be local midnights in `tz`."""
    if isinstance(value, dt.datetime):
        return _midnight_to_day(value, tz)
    return value


@lru_cache(maxsize=65536)
def _midnight_to_day(value: Instant, tz: str) -> dt.date:
    # Cached: a run converts the same few month boundaries for thousands of lines.
    day = local_date(value, tz)
    if local_midnight(day, tz) != value:
        raise ValueError(f"{value.isoformat()} is not a local midnight in {tz}")
    return day


def _exact(value: Decimal | int | str | Fraction) -> Fraction:
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    if isinstance(value, Fraction):
        return value
    return _decimal_fraction(Decimal(value))


@lru_cache(maxsize=8192)
def _decimal_fraction(value: Decimal) -> Fraction:
    # Cached: a run converts the same few monthly rates thousands of times.
    return Fraction(value)


def accrual_days(monthly_rate: Decimal | Fraction, start: dt.date, end: dt.date) -> Fraction:
    """Exact accrual of `monthly_rate` over local dates `[start, end)`; zero if empty."""
    return _exact(monthly_rate) * month_fraction(start, end)


@lru_cache(maxsize=65536)
def month_fraction(start: dt.date, end: dt.date) -> Fraction:
    """How many calendar months `[start, end)` is, exactly: Σ days_in_period / days_in_month.

    Independent of the rate (accrual = rate × this, exactly), so it is cached: a run prices
    thousands of lines over the same few month boundaries.
    """
    if end <= start:
        return Fraction(0)
    total = Fraction(0)
    for first in months_between(start, end - dt.timedelta(days=1)):
        lo = max(first, start)
        hi = min(next_month(first), end)
        # A full month counts exactly 1 (days == days in the month).
        total += Fraction((hi - lo).days, days_in_month(first))
    return total


def accrual(
    monthly_rate: Decimal | Fraction, start: Instant | dt.date, end: Instant | dt.date, tz: str
) -> Fraction:
    """Exact accrual of `monthly_rate` over `[start, end)` by calendar months in zone `tz`.

    `start` and `end` are local midnights in `tz` (aware datetimes) or local dates.
    """
    return accrual_days(monthly_rate, _as_local_day(start, tz), _as_local_day(end, tz))


def to_money(value: Fraction) -> Decimal:
    """Round an exact amount to the cent, half-up, through the one rounding helper.

    The division runs at a precision far above any amount's digits, so the value handed to
    `round_money` is exact wherever it lies on a half cent (those amounts have finite decimals)
    and can't cross a half cent otherwise.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        decimal = Decimal(value.numerator) / Decimal(value.denominator)
    return round_money(decimal)


def cumulative(
    monthly_rate: Decimal | Fraction,
    *,
    life_start: Instant,
    life_end: Instant,
    through: Instant,
    tz: str,
) -> Fraction:
    """Exact accrual of a line whose billable life is `[life_start, life_end)`, up to `through`."""
    upper = min(life_end, through)
    if upper <= life_start:
        return Fraction(0)
    return accrual(monthly_rate, life_start, upper, tz)


def overlap_days(
    *, life_start: Instant, life_end: Instant, period_start: Instant, period_end: Instant, tz: str
) -> int:
    """Local calendar days of `[life_start, life_end)` inside `[period_start, period_end)`."""
    lo = max(life_start, period_start)
    hi = min(life_end, period_end)
    if hi <= lo:
        return 0
    return (_as_local_day(hi, tz) - _as_local_day(lo, tz)).days
