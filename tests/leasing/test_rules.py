"""The lease rules as pure functions: worked vectors T1–T8 (docs/rules/lease.md), DST, 29 Feb."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract_time import local_date, local_midnight
from leasing import rules
from leasing.choices import NoticeOutcome

UTC = dt.UTC
CHICAGO = "America/Chicago"
MONTHLY = Decimal("1250000000.00")


def lease_like(commencement_date, tz="UTC", term_days=180, notice_days=90):
    return SimpleNamespace(
        contract_timezone=tz,
        commencement=local_midnight(commencement_date, tz),
        term_end=rules.term_end(commencement_date, term_days, tz),
        notice_days=notice_days,
    )


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def simple_monthly_rent(lease, start, end):
    """Calendar-month proration used only to exercise the quote's rent seam."""
    total = Decimal(0)
    tz = ZoneInfo(lease.contract_timezone)
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day < last:
        next_month = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        days_in_month = (next_month - day.replace(day=1)).days
        stop = min(next_month, last)
        total += MONTHLY * (stop - day).days / days_in_month
        day = stop
    return total.quantize(Decimal("0.01"))


def test_t1_term_end():
    assert rules.term_end(dt.date(2026, 1, 1), 180, "UTC") == utc(2026, 6, 30)


def test_t2_notice_any_hour_of_the_day():
    lease = lease_like(dt.date(2026, 1, 1))
    for hour in (0, 9, 23):
        received = utc(2026, 1, 1, hour, 59)
        notice_date = rules.notice_date_of(received, "UTC")
        q = rules.quote(lease, notice_date)
        assert q.effective_end == utc(2026, 4, 2)
        assert q.outcome == NoticeOutcome.ENDS


def test_t3():
    q = rules.quote(lease_like(dt.date(2026, 1, 1)), dt.date(2026, 2, 15))
    assert q.effective_end == utc(2026, 5, 17)
    assert q.outcome == NoticeOutcome.ENDS


def test_t4_latest_useful_notice():
    lease = lease_like(dt.date(2026, 1, 1))
    q = rules.quote(lease, dt.date(2026, 3, 30))
    assert q.effective_end == utc(2026, 6, 29)
    assert q.outcome == NoticeOutcome.ENDS
    assert q.latest_useful_notice_date == dt.date(2026, 3, 30)
    assert rules.latest_useful_notice_date(lease.term_end, 90, "UTC") == dt.date(2026, 3, 30)


def test_t5_moot_expires_at_term_end():
    q = rules.quote(lease_like(dt.date(2026, 1, 1)), dt.date(2026, 3, 31))
    assert q.outcome == NoticeOutcome.MOOT
    assert q.holds_until == utc(2026, 6, 30)
    assert q.term_end == utc(2026, 6, 30)


def test_a_notice_already_binding_an_earlier_end_keeps_it_in_the_quote():
    """Several notices: the earliest valid end wins, in the quote's `holds_until` too (it
    used to be the new notice's own end, days late)."""
    lease = lease_like(dt.date(2026, 1, 1))
    lease.effective_end = utc(2026, 4, 2)  # T2's notice binds
    q = rules.quote(lease, dt.date(2026, 2, 15), rent=simple_monthly_rent)
    assert (q.effective_end, q.outcome) == (utc(2026, 5, 17), NoticeOutcome.ENDS)
    assert q.holds_until == utc(2026, 4, 2)
    assert q.held_days == 91
    assert q.rent_due == simple_monthly_rent(lease, lease.commencement, utc(2026, 4, 2))
    moot = rules.quote(lease, dt.date(2026, 3, 31))
    assert (moot.outcome, moot.holds_until) == (NoticeOutcome.MOOT, utc(2026, 4, 2))
    # A later binding end changes nothing: the new notice's own end is earlier.
    lease.effective_end = utc(2026, 6, 1)
    assert rules.quote(lease, dt.date(2026, 2, 15)).holds_until == utc(2026, 5, 17)


def test_t7_cancelled_before_commencement_costs_nothing():
    lease = lease_like(dt.date(2026, 6, 1))
    q = rules.quote(lease, dt.date(2026, 1, 15), rent=simple_monthly_rent)
    assert q.outcome == NoticeOutcome.CANCELLED
    assert q.held_days == 0
    assert q.holds_until == lease.commencement
    assert q.rent_due == Decimal("0.00")


def test_t8_runs_thirty_days():
    lease = lease_like(dt.date(2026, 6, 1))
    q = rules.quote(lease, dt.date(2026, 4, 1), rent=simple_monthly_rent)
    assert q.outcome == NoticeOutcome.ENDS
    assert q.effective_end == utc(2026, 7, 1)
    assert q.held_days == 30
    # June has 30 days: thirty days held is exactly one month of rent.
    assert q.rent_due == MONTHLY


def test_requested_end_is_rounded_up_to_local_midnight_and_never_before_min_end():
    lease = lease_like(dt.date(2026, 1, 1))
    later = rules.quote(lease, dt.date(2026, 1, 1), requested_end=utc(2026, 5, 10, 13, 5))
    assert later.effective_end == utc(2026, 5, 11)
    earlier = rules.quote(lease, dt.date(2026, 1, 1), requested_end=utc(2026, 2, 1))
    assert earlier.effective_end == utc(2026, 4, 2)
    exact = rules.quote(lease, dt.date(2026, 1, 1), requested_end=utc(2026, 5, 10))
    assert exact.effective_end == utc(2026, 5, 10)


def test_chicago_term_crosses_spring_forward():
    lease = lease_like(dt.date(2026, 1, 1), tz=CHICAGO)
    assert lease.commencement == utc(2026, 1, 1, 6)  # CST, UTC−6
    assert lease.term_end == utc(2026, 6, 30, 5)  # CDT, UTC−5


def test_chicago_notice_date_is_the_local_date_of_receipt():
    lease = lease_like(dt.date(2026, 1, 1), tz=CHICAGO)
    received = utc(2026, 1, 2, 5, 30)  # 23:30 on 1 January in Chicago
    notice_date = rules.notice_date_of(received, CHICAGO)
    assert notice_date == dt.date(2026, 1, 1)
    assert rules.quote(lease, notice_date).effective_end == utc(2026, 4, 2, 5)


def test_chicago_notice_period_spans_the_dst_change():
    lease = lease_like(dt.date(2026, 1, 1), tz=CHICAGO)
    q = rules.quote(lease, dt.date(2026, 3, 7))
    assert q.effective_end == utc(2026, 6, 6, 5)
    # 90 full local days, one of which (8 March) has only 23 hours.
    first_full_day = local_midnight(dt.date(2026, 3, 8), CHICAGO)
    assert q.effective_end - first_full_day == dt.timedelta(days=90, hours=-1)


def test_chicago_fall_back_term():
    lease = lease_like(dt.date(2026, 9, 1), tz=CHICAGO)
    assert lease.term_end == utc(2027, 2, 28, 6)
    q = rules.quote(lease, dt.date(2026, 8, 15))
    assert q.effective_end == utc(2026, 11, 14, 6)
    assert q.outcome == NoticeOutcome.ENDS


def test_29_february_in_term_and_in_notice():
    lease = lease_like(dt.date(2027, 12, 1), tz=CHICAGO)
    assert lease.term_end == utc(2028, 5, 29, 5)  # a year earlier the same term ends 30 May
    assert rules.term_end(dt.date(2026, 12, 1), 180, CHICAGO) == utc(2027, 5, 30, 5)
    assert rules.quote(lease, dt.date(2027, 11, 30)).effective_end == utc(2028, 2, 29, 6)
    assert rules.quote(lease, dt.date(2028, 2, 29)).effective_end == utc(2028, 5, 30, 5)
    assert rules.quote(lease, dt.date(2028, 2, 29)).outcome == NoticeOutcome.MOOT
    assert rules.latest_useful_notice_date(lease.term_end, 90, CHICAGO) == dt.date(2028, 2, 27)


ZONES = st.sampled_from(["UTC", CHICAGO, "Europe/London", "Australia/Lord_Howe"])


@settings(max_examples=400, deadline=None)
@given(
    commencement_date=st.dates(dt.date(2024, 1, 1), dt.date(2031, 12, 31)),
    offset_days=st.integers(-400, 200),
    requested_offset=st.one_of(st.none(), st.integers(-50, 400)),
    tz=ZONES,
)
def test_notice_properties(commencement_date, offset_days, requested_offset, tz):
    lease = lease_like(commencement_date, tz=tz)
    notice_date = commencement_date + dt.timedelta(days=offset_days)
    requested_end = (
        None
        if requested_offset is None
        else lease.commencement + dt.timedelta(days=requested_offset, minutes=7)
    )
    q = rules.quote(lease, notice_date, requested_end)
    zone = ZoneInfo(tz)
    end_local = q.effective_end.astimezone(zone)
    # Always a local midnight.
    assert end_local.time() == dt.time(0, 0)
    assert q.effective_end == local_midnight(local_date(q.effective_end, tz), tz)
    # At least 90 full local days between the notice day and the effective end.
    assert (end_local.date() - notice_date).days - 1 >= 90
    # Never past the term end; the outcome matches the dates.
    assert lease.commencement <= q.holds_until <= lease.term_end
    if q.outcome == NoticeOutcome.ENDS:
        assert lease.commencement < q.effective_end < lease.term_end
        assert notice_date <= q.latest_useful_notice_date
    elif q.outcome == NoticeOutcome.MOOT:
        assert q.effective_end >= lease.term_end
        assert q.holds_until == lease.term_end
    else:
        assert q.effective_end <= lease.commencement
        assert q.held_days == 0
    if requested_end is not None and q.effective_end > q.min_end:
        assert q.effective_end >= requested_end
        # Rounded up to the next local midnight (a local day may last 23, 24.5 or 25 hours).
        assert (end_local.date() - requested_end.astimezone(zone).date()).days == 1
