"""Availability and service credits, pure (billing/availability.py; docs/rules/fleet.md,
"Availability and service credits"): the worked vectors S1–S6, DST months, partial months,
incidents across months, replacements, the cap, and a property against a minute-naive count."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from billing import availability as av
from billing import proration
from common.contract_time import local_midnight
from tests.billing.test_planning_pure import database_uses

UTC = dt.UTC
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)
DEC = dt.datetime(2026, 12, 1, tzinfo=UTC)
RENT = Decimal("100000000.00")
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def test_availability_is_pure():
    source = (Path(av.__file__)).read_text(encoding="utf-8")
    assert database_uses(source) == []


def fleet(n=1000, accepted=NOV - 10 * D):
    return [av.AllocationFact(i, i, NOV - 30 * D, NOV + 365 * D, accepted) for i in range(1, n + 1)]


def compute(
    allocs,
    *,
    incidents=(),
    windows=(),
    start=NOV,
    end=DEC,
    line_end=None,
    rent=RENT,
    until=None,
    replacements=(),
    tz="UTC",
    line_start=NOV - 30 * D,
):
    line_end = line_end or NOV + 365 * D
    terms = av.node_terms(
        line_start=line_start, line_end=line_end, allocations=allocs, replacements=replacements
    )
    by_node_inc: dict = {}
    for inc in incidents:
        by_node_inc.setdefault(inc.node, []).append(inc)
    by_node_win: dict = {}
    for w in windows:
        for n in w.nodes:
            by_node_win.setdefault(n, []).append(w)
    rent_month = av.month_rent(
        rent,
        life_start=max(line_start, start),
        life_end=line_end,
        month_start=start,
        month_end=end,
        tz=tz,
    )
    return av.line_month(
        line=1,
        month_start=start,
        month_end=end,
        until=until or end,
        terms=terms,
        incidents=by_node_inc,
        windows=by_node_win,
        month_rent=rent_month,
    )


def incident(i, node, opened, resolved):
    return av.IncidentFact(i, node, opened, resolved)


def window(i, nodes, start, hours, *, ahead_days, kind="planned"):
    return av.WindowFact(
        i, kind, start - ahead_days * D, start, start + hours * H, frozenset(nodes)
    )


def test_s1_one_node_down_two_days_pro_rata_beats_tier_zero():
    r = compute(fleet(), incidents=[incident(1, 7, NOV + 3 * D, NOV + 5 * D)])
    assert r.in_service_minutes == 43_200_000
    assert r.downtime_minutes == 2_880
    assert av.percent(r.availability) == Decimal("99.9933")
    assert r.tier == 0
    assert r.credit == Decimal("6666.67")


def test_s2_twenty_nodes_down_three_days():
    incs = [incident(i, i, NOV + 10 * D, NOV + 13 * D) for i in range(1, 21)]
    r = compute(fleet(), incidents=incs)
    assert av.percent(r.availability) == Decimal("99.8000")
    assert r.credit == Decimal("200000.00")


def test_s3_all_nodes_down_six_hours_tier_beats_pro_rata():
    incs = [incident(i, i, NOV + 2 * D, NOV + 2 * D + 6 * H) for i in range(1, 1001)]
    r = compute(fleet(), incidents=incs)
    assert av.percent(r.availability) == Decimal("99.1667")
    assert r.tier == Fraction(5, 100)
    assert r.credit == Decimal("5000000.00")
    assert proration.to_money(r.downtime_minutes / r.in_service_minutes * r.month_rent) == (
        Decimal("833333.33")
    )


def test_s4_planned_window_within_the_allowance_is_free():
    r = compute(fleet(), windows=[window(1, range(1, 101), NOV + 5 * D, 8, ahead_days=10)])
    assert r.downtime_us == 0
    assert r.availability == 1
    assert r.credit == Decimal("0.00")
    assert r.windows[0].minutes == 48_000
    assert r.windows[0].counted == 0


def test_s5_the_same_window_announced_three_days_ahead_counts_in_full():
    r = compute(fleet(), windows=[window(1, range(1, 101), NOV + 5 * D, 8, ahead_days=3)])
    assert r.downtime_minutes == 48_000
    assert av.percent(r.availability) == Decimal("99.8889")
    assert r.credit == Decimal("111111.11")
    assert r.windows[0].late
    assert r.windows[0].counted == 48_000


def test_s6_planned_twelve_hours_counts_the_four_beyond_the_allowance():
    r = compute(fleet(), windows=[window(1, range(1, 101), NOV + 5 * D, 12, ahead_days=10)])
    assert r.downtime_minutes == 100 * 240
    assert av.percent(r.availability) == Decimal("99.9444")
    assert r.credit == Decimal("55555.56")
    assert r.windows[0].counted == 24_000


def test_emergency_window_counts_in_full_even_announced_early():
    w = window(1, [1], NOV + 5 * D, 2, ahead_days=30, kind="emergency")
    r = compute(fleet(10), windows=[w], rent=Decimal("1000.00"))
    assert r.downtime_minutes == 120


def test_allowance_is_consumed_in_time_order_across_windows():
    ws = [
        window(1, [1], NOV + 1 * D, 5, ahead_days=10),
        window(2, [1], NOV + 2 * D, 5, ahead_days=10),
    ]
    r = compute(fleet(2), windows=ws)
    assert r.downtime_minutes == 120  # 10 h planned, 8 h allowed
    assert [w.counted for w in r.windows] == [0, 120]


def test_incident_and_window_overlapping_count_once():
    w = window(1, [1], NOV + 1 * D, 4, ahead_days=1)  # late: counts in full
    inc = incident(1, 1, NOV + 1 * D + 2 * H, NOV + 1 * D + 6 * H)
    r = compute(fleet(2), windows=[w], incidents=[inc])
    assert r.downtime_minutes == 6 * 60


def test_dst_november_chicago_has_43260_minutes():
    tz = "America/Chicago"
    start, end = local_midnight(dt.date(2026, 11, 1), tz), local_midnight(dt.date(2026, 12, 1), tz)
    a = [av.AllocationFact(1, 1, start - 40 * D, end + 40 * D, start - 40 * D)]
    r = compute(a, start=start, end=end, tz=tz, line_start=start - 40 * D)
    assert r.in_service_minutes == 43_260
    assert r.month_rent == RENT


def test_dst_march_chicago_has_44580_minutes():
    tz = "America/Chicago"
    start, end = local_midnight(dt.date(2027, 3, 1), tz), local_midnight(dt.date(2027, 4, 1), tz)
    a = [av.AllocationFact(1, 1, start - 40 * D, end + 40 * D, start - 40 * D)]
    inc = incident(1, 1, start + 10 * D, start + 10 * D + 446 * dt.timedelta(minutes=1))
    r = compute(a, start=start, end=end, tz=tz, line_start=start - 40 * D, incidents=[inc])
    assert r.in_service_minutes == 44_580
    assert r.downtime_minutes == 446  # 1.0004 %: tier 10 % beats pro rata
    assert r.tier == Fraction(10, 100)
    assert r.credit == Decimal("10000000.00")


def test_line_starting_mid_month_counts_from_acceptance_or_commencement():
    start = NOV + 10 * D
    allocs = [
        av.AllocationFact(1, 1, start, DEC + 60 * D, start - 3 * D),  # accepted early
        av.AllocationFact(2, 2, start, DEC + 60 * D, start + 5 * D),  # accepted late
        av.AllocationFact(3, 3, start, DEC + 60 * D, None),  # pending
    ]
    r = compute(allocs, line_start=start)
    assert r.in_service_minutes == (20 + 15) * 1440
    # Month rent is the 20 days of the line's life.
    assert r.month_rent == Fraction(RENT) * Fraction(20, 30)


def test_line_ending_mid_month_stops_counting_at_its_end():
    end = NOV + 12 * D
    inc = incident(1, 1, end - D, end + 5 * D)
    r = compute(fleet(1), line_end=end, incidents=[inc], rent=Decimal("3000.00"))
    assert r.in_service_minutes == 12 * 1440
    assert r.downtime_minutes == 1440
    assert r.month_rent == Decimal(1200)
    # 91.67 %: tier 25 % (300) beats 1/12 pro rata (100)
    assert r.credit == Decimal("300.00")


def test_incident_spanning_two_months_counts_in_each():
    inc = incident(1, 1, DEC - 2 * D, DEC + 3 * D)
    nov = compute(fleet(10), incidents=[inc])
    dec = compute(fleet(10), incidents=[inc], start=DEC, end=DEC + 31 * D)
    assert nov.downtime_minutes == 2 * 1440
    assert dec.downtime_minutes == 3 * 1440
    assert nov.incidents[0].minutes == 2 * 1440
    assert dec.incidents[0].minutes == 3 * 1440


def test_open_incident_counts_to_the_month_end_or_now():
    inc = incident(1, 1, NOV + 20 * D, None)
    assert compute(fleet(1), incidents=[inc]).downtime_minutes == 10 * 1440
    mtd = compute(fleet(1), incidents=[inc], until=NOV + 25 * D)
    assert not mtd.final
    assert mtd.in_service_minutes == 25 * 1440
    assert mtd.downtime_minutes == 5 * 1440


def test_credit_never_exceeds_the_month_rent():
    inc = incident(1, 1, NOV - 5 * D, None)
    r = compute(fleet(1), incidents=[inc], rent=Decimal("999.99"))
    assert r.availability == 0
    assert r.credit == Decimal("999.99")


def test_replaced_node_counts_down_until_the_spare_is_accepted():
    failed = av.AllocationFact(1, 1, NOV - 30 * D, NOV + 10 * D, NOV - 30 * D)
    spare = av.AllocationFact(2, 99, NOV + 10 * D, NOV + 365 * D, NOV + 12 * D)
    other = av.AllocationFact(3, 3, NOV - 30 * D, NOV + 365 * D, NOV - 30 * D)
    inc = incident(1, 1, NOV + 9 * D, None)  # never resolved: the node left the lease
    r = compute(
        [failed, spare, other],
        incidents=[inc],
        replacements=[av.ReplacementFact(1, 2, NOV + 10 * D, incident=1)],
    )
    # The slot is in service all month; down from the report to the spare's acceptance.
    assert r.in_service_minutes == 2 * 30 * 1440
    assert r.downtime_minutes == 3 * 1440


def test_replaced_node_downtime_stops_when_its_incident_resolves_first():
    failed = av.AllocationFact(1, 1, NOV - 30 * D, NOV + 10 * D, NOV - 30 * D)
    spare = av.AllocationFact(2, 99, NOV + 10 * D, NOV + 365 * D, NOV + 12 * D)
    inc = incident(1, 1, NOV + 9 * D, NOV + 11 * D)
    r = compute(
        [failed, spare],
        incidents=[inc],
        replacements=[av.ReplacementFact(1, 2, NOV + 10 * D, incident=1)],
    )
    assert r.in_service_minutes == 30 * 1440
    assert r.downtime_minutes == 2 * 1440


def test_tier_lower_bounds_belong_to_the_tier():
    assert av.tier_of(Fraction(995, 1000)) == 0
    assert av.tier_of(Fraction(99, 100)) == Fraction(5, 100)
    assert av.tier_of(Fraction(95, 100)) == Fraction(10, 100)
    assert av.tier_of(Fraction(90, 100)) == Fraction(25, 100)
    assert av.tier_of(Fraction(8999, 10000)) == Fraction(50, 100)


# --- property: the interval arithmetic agrees with a minute-by-minute count -------------------

M = dt.timedelta(minutes=1)
SPAN = 2 * 1440  # a two-day "month" keeps the naive count small
minute = st.integers(0, SPAN)


@st.composite
def schedules(draw):
    nodes = draw(st.integers(1, 3))
    allocs = [
        av.AllocationFact(
            n,
            n,
            NOV - D,
            NOV + 10 * D,
            draw(st.one_of(st.none(), st.builds(lambda m: NOV + m * M, minute))),
        )
        for n in range(1, nodes + 1)
    ]
    incs = []
    for i in range(draw(st.integers(0, 4))):
        a = draw(st.integers(-100, SPAN))
        length = draw(st.one_of(st.none(), st.integers(1, 1500)))
        incs.append(
            incident(
                i,
                draw(st.integers(1, nodes)),
                NOV + a * M,
                None if length is None else NOV + (a + length) * M,
            )
        )
    wins = []
    for i in range(draw(st.integers(0, 4))):
        a = draw(st.integers(-100, SPAN))
        wins.append(
            av.WindowFact(
                i,
                draw(st.sampled_from(["planned", "emergency"])),
                NOV + a * M - draw(st.integers(0, 14 * 1440)) * M,
                NOV + a * M,
                NOV + (a + draw(st.integers(1, 900))) * M,
                frozenset(draw(st.sets(st.integers(1, nodes), min_size=1))),
            )
        )
    line_end = NOV + draw(st.integers(1, SPAN + 100)) * M
    rent = Decimal(draw(st.integers(0, 10**9))) / 100
    return allocs, incs, wins, line_end, rent


def naive(allocs, incs, wins, line_end, rent):
    """Minute by minute: each node's in-service and down minutes, allowance spent in order."""
    end = NOV + SPAN * M
    in_service = down = 0
    for a in allocs:
        if a.accepted_at is None:
            continue
        allowance = 480
        for k in range(SPAN):
            t = NOV + k * M
            if not (max(a.accepted_at, NOV - D) <= t < min(line_end, end, a.ends_at)):
                continue
            in_service += 1
            is_down = any(
                i.node == a.node
                and i.opened_at <= t
                and (i.resolved_at is None or t < i.resolved_at)
                for i in incs
            )
            here = [w for w in wins if a.node in w.nodes and w.starts_at <= t < w.ends_at]
            if any(w.counts_in_full for w in here):
                is_down = True
            if any(not w.counts_in_full for w in here):
                if allowance > 0:
                    allowance -= 1
                else:
                    is_down = True
            down += is_down
    return in_service, down


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_credit_equals_a_minute_naive_recomputation(case):
    allocs, incs, wins, line_end, rent = case
    month_rent = Fraction(rent)
    terms = av.node_terms(line_start=NOV - D, line_end=line_end, allocations=allocs)
    r = av.line_month(
        line=1,
        month_start=NOV,
        month_end=NOV + SPAN * M,
        until=NOV + SPAN * M,
        terms=terms,
        incidents={n: [i for i in incs if i.node == n] for n in range(1, 4)},
        windows={n: [w for w in wins if n in w.nodes] for n in range(1, 4)},
        month_rent=month_rent,
    )
    in_service, down = naive(allocs, incs, wins, line_end, rent)
    assert r.in_service_minutes == in_service
    assert r.downtime_minutes == down
    if in_service == 0:
        assert r.credit == 0
        return
    ratio = Fraction(down, in_service)
    a = 1 - ratio
    tier = (
        Fraction(0)
        if a >= Fraction(995, 1000)
        else Fraction(5, 100)
        if a >= Fraction(99, 100)
        else Fraction(10, 100)
        if a >= Fraction(95, 100)
        else Fraction(25, 100)
        if a >= Fraction(90, 100)
        else Fraction(50, 100)
    )
    expected = proration.to_money(min(max(tier, ratio) * month_rent, month_rent))
    assert r.credit == expected
    assert r.credit <= rent
