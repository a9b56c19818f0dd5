"""Availability of a lease line over a calendar month, and the service credit it earns.

Pure computation: plain facts in (allocations, replacements, incidents, maintenance windows,
the month's bounds and the line's month rent), a `LineMonth` out. No query, no write; the
loader is `billing/service_credits.py`. The rules (docs/rules/fleet.md, "Availability and
service credits"):

* **In service.** Each node the line holds is in service from its acceptance (or the line's
  commencement, whichever is later) until the line's end. A node never accepted is not in
  service (its rent comes back as a delivery credit instead). A node swapped for a spare
  (`Replacement`) stays counted until the spare is accepted: the slot was promised all along,
  so the failed node's incident keeps counting as downtime until the spare passes acceptance
  or the incident is resolved, whichever comes first; the spare is in service from its own
  acceptance.
* **Downtime** of a node is the union of: its incidents (from `opened_at` to resolution, any
  severity); maintenance windows on it that are emergencies or were announced less than 7 days
  before they start (late); and the planned, timely window time beyond an allowance of 8 hours
  per node and month, consumed in time order. Overlaps count once.
* **Availability** = `1 − downtime node-minutes / in-service node-minutes` (1 when nothing was
  in service). Tier: ≥ 99.5 % → 0; ≥ 99.0 % → 5 %; ≥ 95 % → 10 %; ≥ 90 % → 25 %; else 50 %
  (a tier's lower bound belongs to it).
* **Credit** = `max(tier × month rent, downtime / in-service × month rent)`, capped at the month
  rent, rounded half-up to the cent once (`proration.to_money`).

Durations are exact: integer microseconds inside, `Fraction` minutes outside.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from . import proration

PLANNED_NOTICE = dt.timedelta(days=7)
ALLOWANCE = dt.timedelta(hours=8)  # planned maintenance per node and month
US_PER_MINUTE = 60_000_000

# (lower bound, tier) from the best; the first bound the availability reaches gives the tier.
TIERS: tuple[tuple[Fraction, Fraction], ...] = (
    (Fraction(995, 1000), Fraction(0)),
    (Fraction(99, 100), Fraction(5, 100)),
    (Fraction(95, 100), Fraction(10, 100)),
    (Fraction(90, 100), Fraction(25, 100)),
    (Fraction(0), Fraction(50, 100)),
)


def _us(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def minutes(us: int) -> Fraction:
    """Exact minutes of a duration in microseconds."""
    return Fraction(us, US_PER_MINUTE)


def tier_of(availability: Fraction) -> Fraction:
    for bound, tier in TIERS:
        if availability >= bound:
            return tier
    return TIERS[-1][1]


def credit_of(
    *, downtime_us: int, in_service_us: int, month_rent: Fraction
) -> tuple[Fraction, Fraction, Decimal]:
    """`(availability, tier, credit)` of a line-month from its two totals and its month rent."""
    if in_service_us <= 0:
        return Fraction(1), Fraction(0), Decimal("0.00")
    ratio = Fraction(min(downtime_us, in_service_us), in_service_us)
    availability = 1 - ratio
    tier = tier_of(availability)
    exact = min(max(tier * month_rent, ratio * month_rent), month_rent)
    return availability, tier, proration.to_money(exact)


# --- facts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationFact:
    id: int
    node: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    accepted_at: dt.datetime | None
    hostname: str = ""


@dataclass(frozen=True)
class ReplacementFact:
    failed_allocation: int
    spare_allocation: int
    at: dt.datetime
    incident: int | None = None


@dataclass(frozen=True)
class IncidentFact:
    id: int
    node: int
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    category: str = "other"


@dataclass(frozen=True)
class WindowFact:
    id: int
    kind: str  # "planned" or "emergency"
    announced_at: dt.datetime
    starts_at: dt.datetime
    ends_at: dt.datetime
    nodes: frozenset[int]
    title: str = ""

    @property
    def counts_in_full(self) -> bool:
        """Emergency, or announced less than 7 days ahead: every minute is downtime."""
        return self.kind != "planned" or self.announced_at > self.starts_at - PLANNED_NOTICE


@dataclass(frozen=True)
class NodeTerm:
    """One allocation's time in service on the line: `[start, end)`; the node is the line's
    while `held_until` (windows on it count only then; incidents count to `end`)."""

    allocation: int
    node: int
    start: dt.datetime
    end: dt.datetime
    held_until: dt.datetime
    hostname: str = ""


def node_terms(
    *,
    line_start: dt.datetime,
    line_end: dt.datetime,
    allocations: Sequence[AllocationFact],
    replacements: Sequence[ReplacementFact] = (),
) -> list[NodeTerm]:
    """Each accepted allocation's time in service (see the module docstring)."""
    by_id = {a.id: a for a in allocations}
    spare_of = {r.failed_allocation: by_id.get(r.spare_allocation) for r in replacements}
    terms = []
    for a in allocations:
        if a.accepted_at is None:
            continue
        start = max(line_start, a.starts_at, a.accepted_at)
        if a.id in spare_of:
            spare = spare_of[a.id]
            end = spare.accepted_at if spare is not None and spare.accepted_at else line_end
            end = max(min(end, line_end), a.ends_at)  # at least to the swap
        else:
            end = min(a.ends_at, line_end)
        if end > start:
            terms.append(
                NodeTerm(a.id, a.node, start, end, min(a.ends_at, end), hostname=a.hostname)
            )
    return terms


# --- one line, one month -----------------------------------------------------------------


@dataclass
class IncidentMinutes:
    incident: int
    node: int
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    category: str
    minutes: Fraction  # node-minutes it covered in service this month (overlaps included)


@dataclass
class WindowMinutes:
    window: int
    title: str
    kind: str
    late: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    announced_at: dt.datetime
    nodes: int  # nodes of this line it touched
    minutes: Fraction  # node-minutes in service inside it
    counted: Fraction = Fraction(0)  # of which downtime (late/emergency, or beyond allowance)


@dataclass
class LineMonth:
    line: int
    month_start: dt.datetime
    month_end: dt.datetime
    until: dt.datetime  # computed through here (the month end once final)
    in_service_us: int
    downtime_us: int
    incident_us: int  # incident time alone (union per node)
    maintenance_us: int  # counted maintenance alone (union per node)
    availability: Fraction
    tier: Fraction
    month_rent: Fraction
    credit: Decimal
    incidents: list[IncidentMinutes] = field(default_factory=list)
    windows: list[WindowMinutes] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.until >= self.month_end

    @property
    def in_service_minutes(self) -> Fraction:
        return minutes(self.in_service_us)

    @property
    def downtime_minutes(self) -> Fraction:
        return minutes(self.downtime_us)


Interval = tuple[dt.datetime, dt.datetime]


def _clip(start: dt.datetime, end: dt.datetime, lo: dt.datetime, hi: dt.datetime):
    s, e = max(start, lo), min(end, hi)
    return (s, e) if e > s else None


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _length(intervals: Iterable[Interval]) -> int:
    return sum(_us(e - s) for s, e in intervals)


def _beyond_allowance(planned: list[Interval]) -> list[Interval]:
    """The part of the (merged, sorted) planned intervals after the first 8 hours."""
    left = _us(ALLOWANCE)
    beyond = []
    for s, e in planned:
        span = _us(e - s)
        if span <= left:
            left -= span
            continue
        cut = s + dt.timedelta(microseconds=left)
        left = 0
        beyond.append((cut, e))
    return beyond


def line_month(
    *,
    line: int,
    month_start: dt.datetime,
    month_end: dt.datetime,
    until: dt.datetime,
    terms: Sequence[NodeTerm],
    incidents: Mapping[int, Sequence[IncidentFact]],
    windows: Mapping[int, Sequence[WindowFact]],
    month_rent: Fraction,
) -> LineMonth:
    """Availability and credit of one line over `[month_start, min(until, month_end))`.

    `incidents` and `windows` are by node id (only the nodes of `terms` are read).
    """
    hi = min(until, month_end)
    in_service = down = inc_total = maint_total = 0
    inc_rows: dict[int, IncidentMinutes] = {}
    win_rows: dict[int, WindowMinutes] = {}
    for term in terms:
        service = _clip(term.start, term.end, month_start, hi)
        if service is None:
            continue
        lo_s, hi_s = service
        in_service += _us(hi_s - lo_s)
        inc_iv = []
        for inc in incidents.get(term.node, ()):
            iv = _clip(inc.opened_at, inc.resolved_at or hi_s, lo_s, hi_s)
            if iv is None:
                continue
            inc_iv.append(iv)
            row = inc_rows.setdefault(
                inc.id,
                IncidentMinutes(
                    inc.id, inc.node, inc.opened_at, inc.resolved_at, inc.category, Fraction(0)
                ),
            )
            row.minutes += minutes(_us(iv[1] - iv[0]))
        full_iv: list[Interval] = []
        planned_iv: list[Interval] = []
        held = _clip(lo_s, min(hi_s, term.held_until), lo_s, hi_s)
        for w in windows.get(term.node, ()):
            iv = _clip(w.starts_at, w.ends_at, *held) if held else None
            if iv is None:
                continue
            (full_iv if w.counts_in_full else planned_iv).append(iv)
            row_w = win_rows.setdefault(
                w.id,
                WindowMinutes(
                    w.id,
                    w.title,
                    w.kind,
                    w.counts_in_full,
                    w.starts_at,
                    w.ends_at,
                    w.announced_at,
                    0,
                    Fraction(0),
                ),
            )
            row_w.nodes += 1
            row_w.minutes += minutes(_us(iv[1] - iv[0]))
            if w.counts_in_full:
                row_w.counted += minutes(_us(iv[1] - iv[0]))
        beyond = _beyond_allowance(_union(planned_iv))
        for s, e in beyond:  # attribute the excess to the planned windows it falls in
            for w in windows.get(term.node, ()):
                if w.counts_in_full or w.id not in win_rows:
                    continue
                iv = _clip(w.starts_at, w.ends_at, s, e)
                if iv is not None:
                    win_rows[w.id].counted += minutes(_us(iv[1] - iv[0]))
                    s = iv[1]  # overlapping windows: count each minute once
        maint = _union(full_iv + beyond)
        inc_u = _union(inc_iv)
        inc_total += _length(inc_u)
        maint_total += _length(maint)
        down += _length(_union(inc_u + maint))
    availability, tier, credit = credit_of(
        downtime_us=down, in_service_us=in_service, month_rent=month_rent
    )
    return LineMonth(
        line=line,
        month_start=month_start,
        month_end=month_end,
        until=hi,
        in_service_us=in_service,
        downtime_us=down,
        incident_us=inc_total,
        maintenance_us=maint_total,
        availability=availability,
        tier=tier,
        month_rent=month_rent,
        credit=credit,
        incidents=sorted(inc_rows.values(), key=lambda r: (r.opened_at, r.incident)),
        windows=sorted(win_rows.values(), key=lambda r: (r.starts_at, r.window)),
    )


def month_rent(
    monthly_rate: Decimal,
    *,
    life_start: dt.datetime,
    life_end: dt.datetime,
    month_start: dt.datetime,
    month_end: dt.datetime,
    tz: str,
) -> Fraction:
    """The line's exact rent for the month: the calendar-month rule over its life inside it."""
    lo, hi = max(life_start, month_start), min(life_end, month_end)
    if hi <= lo:
        return Fraction(0)
    return proration.accrual(monthly_rate, lo, hi, tz)


def percent(value: Fraction, places: int = 4) -> Decimal:
    """A ratio as a percentage rounded half-up to `places` decimals (display only)."""
    with localcontext() as ctx:
        ctx.prec = 50
        exact = Decimal(value.numerator * 100) / Decimal(value.denominator)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
