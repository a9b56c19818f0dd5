"""Exact proration and cumulative rounding, without a database (billing/proration.py)."""

import datetime as dt
import itertools
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.planning import split_cents
from billing.proration import accrual, next_month, period_bounds, to_money
from common.contract_time import local_midnight

RATE = Decimal("1250000000.00")
UTC = dt.UTC


def at(day: dt.date, tz: str = "UTC") -> dt.datetime:
    return local_midnight(day, tz)


def test_full_calendar_month_is_exactly_the_rate():
    for month in range(1, 13):
        start = dt.date(2026, month, 1)
        end = dt.date(2027, 1, 1) if month == 12 else dt.date(2026, month + 1, 1)
        assert accrual(RATE, start, end, "UTC") == Fraction(RATE)


def test_lease_starting_mid_month():
    # 2026-01-15 .. 2026-02-01: 17 of January's 31 days.
    amount = to_money(accrual(RATE, at(dt.date(2026, 1, 15)), at(dt.date(2026, 2, 1)), "UTC"))
    assert amount == Decimal("685483870.97")  # 1.25e9 × 17 / 31 = 685,483,870.9677…


def test_leap_february_counts_29_days():
    feb_2028 = accrual(RATE, dt.date(2028, 2, 10), dt.date(2028, 3, 1), "UTC")
    assert feb_2028 == Fraction(RATE) * 20 / 29
    assert to_money(feb_2028) == Decimal("862068965.52")
    feb_2026 = accrual(RATE, dt.date(2026, 2, 10), dt.date(2026, 3, 1), "UTC")
    assert feb_2026 == Fraction(RATE) * 19 / 28


def test_half_cent_rounds_up_not_to_even():
    # 24.01 × 15 / 30 = 12.005 exactly: half-up gives 12.01 (half-even would give 12.00).
    amount = to_money(accrual(Decimal("24.01"), dt.date(2026, 4, 1), dt.date(2026, 4, 16), "UTC"))
    assert amount == Decimal("12.01")


def test_west_of_utc_month_boundary_uses_local_calendar():
    tz = "America/Los_Angeles"
    march_start, march_end = period_bounds(dt.date(2026, 3, 1), tz)
    # PST on March 1st, PDT on April 1st (DST began March 8th).
    assert march_start == dt.datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert march_end == dt.datetime(2026, 4, 1, 7, tzinfo=UTC)
    assert accrual(RATE, march_start, march_end, tz) == Fraction(RATE)
    # A lease from local March 31st: one day of March, whatever UTC says (it is already April
    # 1st 07:00 UTC at the end of that local day).
    start = at(dt.date(2026, 3, 31), tz)
    assert start == dt.datetime(2026, 3, 31, 7, tzinfo=UTC)
    amount = to_money(accrual(RATE, start, march_end, tz))
    assert amount == Decimal("40322580.65")  # 1.25e9 / 31


def test_boundaries_must_be_local_midnights():
    with pytest.raises(ValueError, match="local midnight"):
        accrual(RATE, dt.datetime(2026, 1, 1, tzinfo=UTC), at(dt.date(2026, 2, 1)), "Asia/Tokyo")


ZONES = ["UTC", "America/Los_Angeles", "America/St_Johns", "Asia/Kolkata", "Pacific/Auckland"]

rates = st.decimals(
    min_value=Decimal("0"), max_value=Decimal("5000000000"), places=2, allow_nan=False
)
days = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2029, 12, 31))


@settings(max_examples=300, deadline=None)
@given(
    rate=rates,
    start=days,
    length=st.integers(min_value=0, max_value=800),
    tz=st.sampled_from(ZONES),
    cuts=st.lists(st.integers(min_value=0, max_value=900), max_size=8),
)
def test_periods_sum_to_the_total_rounded_once(rate, start, length, tz, cuts):
    """Any split of a line's life into periods sums to its exact accrual rounded once."""
    end = start + dt.timedelta(days=length)
    life_start, life_end = at(start, tz), at(end, tz)
    points = sorted({start, end, *(start + dt.timedelta(days=c) for c in cuts if c < length)})
    # The cumulative rule as invoices apply it (`split_cents` over consecutive exact parts).
    parts = [accrual(rate, at(a, tz), at(b, tz), tz) for a, b in itertools.pairwise(points)]
    amounts = split_cents(Fraction(0), parts)
    assert all(amount >= 0 for amount in amounts)
    assert sum(amounts, Decimal("0.00")) == to_money(accrual(rate, life_start, life_end, tz))


@settings(max_examples=200, deadline=None)
@given(rate=rates, start=days, length=st.integers(min_value=1, max_value=500))
def test_calendar_month_invoices_sum_to_total(rate, start, length):
    """Invoices by calendar month in a west-of-UTC zone, leap Februaries included."""
    tz = "America/Los_Angeles"
    end = start + dt.timedelta(days=length)
    life_start, life_end = at(start, tz), at(end, tz)
    month = start.replace(day=1)
    bounds, parts = [], []
    while at(month, tz) < life_end:
        p_start, p_end = period_bounds(month, tz)
        bounds.append((p_start, p_end))
        parts.append(accrual(rate, max(p_start, life_start), min(p_end, life_end), tz))
        month = next_month(month)
    amounts = split_cents(Fraction(0), parts)
    for (p_start, p_end), amount in zip(bounds, amounts, strict=True):
        assert amount >= 0
        # A full month inside the life is billed at the rate, to the cent.
        if life_start <= p_start and p_end <= life_end:
            assert amount == rate
    assert sum(amounts, Decimal("0.00")) == to_money(accrual(rate, life_start, life_end, tz))
