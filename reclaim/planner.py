"""The valuation rules of reclaim decisions and the planner, as plain functions (no ORM).

Rules (docs/rules/lease.md, "Notice"; docs/model.md, "Value, placements and break-evens"):

- **Window.** An operator notice given on `notice_date` ends a lease (or the chosen lines) at
  `rules.notice_effective_end(notice_date, notice_days, tz)`. A candidate line comes back at
  `start = min(max(effective_end, commencement), line_end)` (a notice before commencement
  cancels: the capacity never leaves) and would otherwise have stayed leased until `line_end`
  (its own or its lease's current end: existing notices count). The window is
  `[start, line_end)`, empty when the notice is moot for that line — then nothing is valued,
  nothing is forgone and reclaiming is never recommended. Whole lease or some lines: the
  effective end is the same; only the notice differs.
- **Rent forgone.** The exact accrual (`billing.proration.accrual`, calendar months of the
  contract zone) of each line's monthly rate over its window, summed exactly, rounded once
  half-up to the cent.
- **Internal value.** Lines whose windows coincide form a *part* (usually: the candidate lines
  of one lease). Each part is one scenario: the part's GPUs as `leased` pools (running GPUs
  only, from the inventory seam), `horizon_days` = the window's elapsed length in days, and
  `rent_per_month_usd` chosen so the model's rent equals the part's exact rent forgone (so the
  model's break-evens talk about the same money). A decision's value, rent and net are the sums
  over its parts: capacity that comes back at different times is valued over its own window,
  never over a window it is not available in.
- **Own capacity is left out of the scenario.** The model's rule for leased pools values them
  as max(alone, best − best without them), but its candidate placements include no "unleased
  pools only" placement, so with the operator's free pools in the scenario the baseline would
  be 0 and the operator's own capacity would be credited to the reclaim. The reclaimed capacity
  is therefore valued on its own (the operator's own pools keep their current work). This is
  the conservative reading; switch once the model offers an own-capacity-only placement.
- **Planner.** Candidate sets are subsets of lease lines (partial reclaim is first class; a
  whole lease is the subset of all its lines). A line is a candidate for a need "from D" only if
  a notice given on the notice date ends it by D (`effective_end ≤ local midnight of D`) and its
  window is not empty: capacity that cannot be had by D is never proposed. Value is linear in
  the horizon, so each subset of a part's lines is evaluated once per day of window and scaled.
  Search: per part, every subset of its lines (2^k model evaluations for a part of k lines,
  k ≤ `EXHAUSTIVE_PART_LINES`; above that a greedy nested chain of k(k+1)/2 evaluations);
  parts are combined by a Pareto merge over (GPU-equivalents, net), which is exact: the optimum
  for any GPU-equivalents floor is on the merged frontier. Cost: Σ 2^k evaluations (a few ms
  each) plus the merge (frontier × options per part).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from billing import proration
from clusters import perfmodel
from clusters.perfmodel.valuation import evaluate_and_value
from common.contract_time import local_midnight
from common.money import ZERO, round_money
from leasing import rules

SECONDS_PER_DAY = 86_400
# Economics fields a decision may override; horizon and rent always come from the window.
ECONOMICS_OVERRIDES = (
    "scarcity_multiplier",
    "reference_accelerator",
    "reference_price_per_gpu_hour_usd",
    "reference_mfu",
    "restart_cost_s",
)
EXHAUSTIVE_PART_LINES = 10
INPUTS_SCHEMA = "landlord.reclaim-inputs/1"
ASSESSMENT_SCHEMA = "landlord.reclaim-assessment/1"


@dataclass(frozen=True)
class LineFacts:
    """What the rules read from one lease line (and its lease), loaded once by the selectors.

    `line_end` is when the line stops holding capacity today (its own or its lease's end).
    `reclaimable`: the line is open and its lease signed (scheduled, active, notice given).
    """

    line_id: int
    lease_id: int
    lease_number: str
    tenant: str
    cluster_id: int
    cluster_slug: str
    site_slug: str
    accelerator: str
    gpus: int
    monthly_rate: Decimal
    tz: str
    commencement: dt.datetime
    term_end: dt.datetime
    line_end: dt.datetime
    notice_days: int
    reclaimable: bool
    label: str  # how people name the line (`leasing.models.line_label`)
    lease_open_line_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class LineWindow:
    """One line under a notice given on `notice_date`: `[start, end)`, exact rent forgone."""

    facts: LineFacts
    notice_date: dt.date
    notice_effective_end: dt.datetime
    start: dt.datetime
    end: dt.datetime
    rent_exact: Fraction

    @property
    def empty(self) -> bool:
        return self.end <= self.start


def line_window(
    facts: LineFacts, notice_date: dt.date, requested_end: dt.datetime | None = None
) -> LineWindow:
    """The value window of a line for an operator notice on `notice_date` (module rules),
    ending at `requested_end` if that is later than the notice's minimum."""
    effective_end = rules.notice_effective_end(
        notice_date, facts.notice_days, facts.tz, requested_end
    )
    end = facts.line_end
    start = min(max(effective_end, facts.commencement), end)
    if not facts.reclaimable:
        start = end
    rent = (
        proration.accrual(facts.monthly_rate, start, end, facts.tz) if end > start else Fraction(0)
    )
    return LineWindow(facts, notice_date, effective_end, start, end, rent)


def window_days(start: dt.datetime, end: dt.datetime) -> float:
    """Elapsed length of `[start, end)` in days (a 23- or 25-hour local day counts as such)."""
    return max(0.0, (end - start).total_seconds() / SECONDS_PER_DAY)


@dataclass(frozen=True)
class Part:
    """Candidate lines sharing one window; one scenario, one assessment."""

    start: dt.datetime
    end: dt.datetime
    windows: tuple[LineWindow, ...]

    @property
    def days(self) -> float:
        return window_days(self.start, self.end)

    @property
    def rent_exact(self) -> Fraction:
        return sum((w.rent_exact for w in self.windows), Fraction(0))

    @property
    def line_ids(self) -> list[int]:
        return [w.facts.line_id for w in self.windows]

    def gpus_by_cluster(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for w in self.windows:
            out[w.facts.cluster_id] = out.get(w.facts.cluster_id, 0) + w.facts.gpus
        return out


def group_parts(windows: Sequence[LineWindow]) -> list[Part]:
    """Non-empty windows grouped by `[start, end)`, earliest first.

    If every window is empty (a moot notice), one empty part of all lines: it is still assessed
    (horizon 0, value 0, rent 0, never reclaim) so the decision shows the capacity's figures.
    """
    groups: dict[tuple[dt.datetime, dt.datetime], list[LineWindow]] = {}
    for w in windows:
        if not w.empty:
            groups.setdefault((w.start, w.end), []).append(w)
    if not groups and windows:
        end = min(w.end for w in windows)
        return [Part(end, end, tuple(windows))]
    return [Part(s, e, tuple(ws)) for (s, e), ws in sorted(groups.items())]


def rent_per_month_for(rent_exact: Fraction, days: float, fallback: Decimal) -> float:
    """The flat monthly rent whose model rent (`rpm · 12 · days / 365`) is the exact rent."""
    if days <= 0:
        return float(fallback)
    return float(rent_exact * 365 / 12) / days


def leased_only(
    document: dict[str, Any], gpus_by_slug: dict[str, int] | None = None
) -> dict[str, Any]:
    """Keep only the leased pools of an inventory scenario (module docstring: own capacity is
    left out); optionally cap each leased pool at `gpus_by_slug[cluster slug]` GPUs. Pools left
    empty and links to sites without pools are dropped."""
    pools = []
    for pool in document["pools"]:
        if not pool.get("leased"):
            continue
        slug = str(pool["name"]).removesuffix(" (leased)")
        gpus = int(pool["gpus"])
        if gpus_by_slug is not None:
            gpus = min(gpus, gpus_by_slug.get(slug, 0))
        if gpus > 0:
            pools.append({**pool, "gpus": gpus})
    sites = {p["site"] for p in pools}
    links = [link for link in document["links"] if link["a"] in sites and link["b"] in sites]
    return {**document, "pools": pools, "links": links}


def part_economics(
    part: Part, economics: dict[str, Any] | None, base: dict[str, Any]
) -> dict[str, Any]:
    """The scenario economics of a part: defaults, the decision's overrides, the window, rent."""
    overrides = {k: v for k, v in (economics or {}).items() if k in ECONOMICS_OVERRIDES}
    monthly = sum((w.facts.monthly_rate for w in part.windows), Decimal(0))
    return {
        **base,
        **overrides,
        "horizon_days": part.days,
        "rent_per_month_usd": rent_per_month_for(part.rent_exact, part.days, monthly),
    }


def money(value: float | None) -> Decimal:
    """A model money figure (USD, already to cents in the assessment) as Decimal."""
    return ZERO if value is None else round_money(Decimal(str(value)))


def combine(parts: list[dict[str, Any]], rent_total: Decimal) -> dict[str, Any]:
    """The decision's totals from its parts' assessments; break-evens of the sum.

    One part: its own break-evens. Several parts: scarcity — value is linear in it, so the sum
    breaks even at s · rent / value (all parts use the same scarcity); rent — the candidate
    lines' contract monthly rent scaled by value / rent; link bandwidth — null (each part's
    own is in its assessment).
    """
    value = sum((money(p["assessment"]["internal_value_usd"]) for p in parts), ZERO)
    net = value - rent_total
    any_window = any(p["days"] > 0 for p in parts)
    scarcity = parts[0]["assessment"]["scarcity_multiplier"] if parts else 1.0
    monthly = sum((Decimal(p["monthly_rate_usd"]) for p in parts), ZERO)
    be_scarcity = (
        float(Decimal(str(scarcity)) * rent_total / value) if value > 0 and any_window else None
    )
    be_rent = (
        str(round_money(monthly * value / rent_total)) if rent_total > 0 and any_window else None
    )
    be_link = None
    if len(parts) == 1:
        # One part: its own break-evens are the decision's (same value, same rent).
        own = parts[0]["assessment"]["break_even"]
        be_scarcity, be_link = own["scarcity_multiplier"], own["link_bandwidth_gbps"]
        be_rent = None if own["rent_per_month_usd"] is None else str(own["rent_per_month_usd"])
    return {
        "internal_value_usd": str(value),
        "rent_usd": str(rent_total),
        "net_usd": str(net),
        "recommendation": "reclaim" if net > 0 and any_window else "keep_leased",
        "break_even": {
            "scarcity_multiplier": be_scarcity,
            "rent_per_month_usd": be_rent,
            "link_bandwidth_gbps": be_link,
        },
    }


# --- the planner -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """What the operator asks for.

    `gpu_equivalents`: the floor, in GPUs of `reference_accelerator` (peak × MFU), 0 for none.
    `by`: the date from which the capacity is needed (None: no date constraint). `site_slug`:
    only lines on that campus ("the best use of campus X").
    """

    gpu_equivalents: float = 0.0
    reference_accelerator: str = "H100"
    by: dt.date | None = None
    site_slug: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A candidate set of lines and its money (floats: the planner ranks; scoring is exact)."""

    line_ids: tuple[int, ...]
    lines: tuple[str, ...]  # the lines' labels, in `line_ids` order
    leases: tuple[str, ...]
    gpus: int
    gpu_equivalents: float
    value_usd: float
    rent_usd: Decimal
    net_usd: float
    window_start: dt.datetime | None
    window_end: dt.datetime | None


@dataclass(frozen=True)
class NoticeRow:
    """The best candidate if notice is given on `notice_date` (one row of the table)."""

    notice_date: dt.date
    feasible_lines: int
    best: Candidate | None


@dataclass
class Plan:
    need: Need
    notice_date: dt.date
    best: Candidate | None
    ranked: list[Candidate]
    excluded: list[tuple[LineFacts, str]]
    by_notice_date: list[NoticeRow] = field(default_factory=list)
    evaluations: int = 0
    method: str = "exhaustive per part, Pareto merge across parts"


# (slugs → GPUs) → scenario document. The planner is handed one built from the inventory.
DocumentFn = Callable[[dict[str, int]], dict[str, Any]]


class Valuer:
    """Per-day internal value of a set of lines, cached by the set (value is linear in days)."""

    def __init__(self, base_document: dict[str, Any], economics: dict[str, Any] | None) -> None:
        self.base = base_document
        self.economics = {k: v for k, v in (economics or {}).items() if k in ECONOMICS_OVERRIDES}
        self.cache: dict[frozenset[int], float] = {}
        self.evaluations = 0

    def per_day(self, windows: Iterable[LineWindow]) -> float:
        items = list(windows)
        key = frozenset(w.facts.line_id for w in items)
        if not key:
            return 0.0
        if key not in self.cache:
            gpus: dict[str, int] = {}
            for w in items:
                gpus[w.facts.cluster_slug] = gpus.get(w.facts.cluster_slug, 0) + w.facts.gpus
            doc = leased_only(self.base, gpus)
            if not doc["pools"]:
                self.cache[key] = 0.0
            else:
                doc["economics"] = {
                    **doc["economics"],
                    **self.economics,
                    "horizon_days": 1.0,
                    "rent_per_month_usd": 0.0,
                }
                scenario = perfmodel.Scenario.from_dict(doc)
                _, val = evaluate_and_value(scenario, perfmodel.candidate_placements(scenario))
                self.cache[key] = float(val.internal_value_usd)
                self.evaluations += 1
        return self.cache[key]


def gpu_equivalent_factors(document: dict[str, Any], reference: str) -> dict[str, float]:
    """GPUs of each accelerator in GPUs of the reference, by peak × MFU."""
    accs = document.get("accelerators", {})

    def speed(name: str) -> float:
        if name in accs:
            return float(accs[name]["peak_tflops"]) * float(accs[name]["mfu"])
        spec = perfmodel.CATALOG[name]
        return spec.peak_tflops * spec.mfu

    ref = speed(reference)
    return {name: speed(name) / ref for name in accs}


@dataclass(frozen=True)
class _Option:
    windows: tuple[LineWindow, ...]
    gpu_eq: float
    net: float
    value: float
    rent: Fraction


# A point of the frontier: (GPU-equivalents, net USD, the options chosen so far).
_Point = tuple[float, float, tuple[_Option, ...]]


def _part_options(part: Part, valuer: Valuer, factors: dict[str, float]) -> list[_Option]:
    """Subsets of a part's lines (all of them, or a greedy nested chain for large parts)."""
    ws = list(part.windows)
    days = part.days

    def option(chosen: tuple[LineWindow, ...]) -> _Option:
        value = valuer.per_day(chosen) * days
        rent = sum((w.rent_exact for w in chosen), Fraction(0))
        gpu_eq = sum(w.facts.gpus * factors.get(w.facts.accelerator, 1.0) for w in chosen)
        return _Option(chosen, gpu_eq, value - float(rent), value, rent)

    if len(ws) <= EXHAUSTIVE_PART_LINES:
        out = []
        for mask in range(1 << len(ws)):
            out.append(option(tuple(w for i, w in enumerate(ws) if mask >> i & 1)))
        return out
    # Greedy chain: add the line with the best net each time (not exhaustive; documented).
    chain = [option(())]
    left = ws[:]
    chosen: tuple[LineWindow, ...] = ()
    while left:
        best = max((option((*chosen, w)) for w in left), key=lambda o: o.net)
        chain.append(best)
        chosen = best.windows
        left = [w for w in left if w not in chosen]
    return chain


def _pareto(points: list[_Point]) -> list[_Point]:
    """Keep the points no other beats on both GPU-equivalents (≥) and net (>)."""
    points.sort(key=lambda p: (-p[0], -p[1]))
    out: list[_Point] = []
    best_net = float("-inf")
    for p in points:
        if p[1] > best_net:
            out.append(p)
            best_net = p[1]
    return out


def _candidate(options: Sequence[_Option], factors: dict[str, float]) -> Candidate:
    windows = [w for o in options for w in o.windows]
    nonempty = [w for w in windows if not w.empty]
    rent = sum((o.rent for o in options), Fraction(0))
    value = sum(o.value for o in options)
    ordered = sorted(windows, key=lambda w: w.facts.line_id)
    return Candidate(
        line_ids=tuple(w.facts.line_id for w in ordered),
        lines=tuple(w.facts.label for w in ordered),
        leases=tuple(sorted({w.facts.lease_number for w in windows})),
        gpus=sum(w.facts.gpus for w in windows),
        gpu_equivalents=sum(w.facts.gpus * factors.get(w.facts.accelerator, 1.0) for w in windows),
        value_usd=value,
        rent_usd=proration.to_money(rent),
        net_usd=value - float(rent),
        window_start=min((w.start for w in nonempty), default=None),
        window_end=max((w.end for w in nonempty), default=None),
    )


def feasible(facts: LineFacts, need: Need, notice_date: dt.date) -> tuple[LineWindow, str]:
    """The line's window and '' if it can be proposed, else the reason it cannot."""
    w = line_window(facts, notice_date)
    if not facts.reclaimable:
        return w, "not open on a signed lease"
    if need.site_slug and facts.site_slug != need.site_slug:
        return w, f"not on {need.site_slug}"
    if w.empty:
        return w, "notice would be moot (the line ends first)"
    if need.by is not None and w.notice_effective_end > local_midnight(need.by, facts.tz):
        return w, f"cannot be had by {need.by:%Y-%m-%d} (ends {w.start:%Y-%m-%d})"
    return w, ""


def best_for(
    facts: Sequence[LineFacts],
    need: Need,
    notice_date: dt.date,
    valuer: Valuer,
    factors: dict[str, float],
    *,
    keep: int = 10,
) -> tuple[Candidate | None, list[Candidate], list[tuple[LineFacts, str]]]:
    """The highest-net feasible set meeting the need, the ranked frontier, the exclusions."""
    windows, excluded = [], []
    for f in facts:
        w, reason = feasible(f, need, notice_date)
        if reason:
            excluded.append((f, reason))
        else:
            windows.append(w)
    frontier: list[_Point] = [(0.0, 0.0, ())]
    for part in group_parts(windows):
        options = _part_options(part, valuer, factors)
        merged = [
            (g + o.gpu_eq, n + o.net, (*chosen, o)) for g, n, chosen in frontier for o in options
        ]
        frontier = _pareto(merged)
    enough = [p for p in frontier if p[0] + 1e-9 >= need.gpu_equivalents]
    enough.sort(key=lambda p: -p[1])
    ranked = [_candidate(p[2], factors) for p in enough[:keep]]
    ranked = [c for c in ranked if c.line_ids]
    best = ranked[0] if ranked else None
    if best is not None and need.gpu_equivalents <= 0 and best.net_usd <= 0:
        best = None  # with no floor to meet, the best use may be to keep everything leased
    return best, ranked, excluded


def notice_dates(start: dt.date, need: Need, facts: Sequence[LineFacts]) -> list[dt.date]:
    """Notice dates for the table: weekly from `start`, plus the last date that still makes D."""
    dates = [start + dt.timedelta(days=7 * i) for i in range(13)]
    if need.by is not None and facts:
        notice_days = min(f.notice_days for f in facts)  # the last date any line makes D
        last = need.by - dt.timedelta(days=notice_days + 1)
        dates = [d for d in dates if d <= last]
        if last >= start:
            dates.append(last)
    return sorted(set(dates)) or [start]


def plan(
    facts: Sequence[LineFacts],
    need: Need,
    *,
    notice_date: dt.date,
    base_document: dict[str, Any],
    economics: dict[str, Any] | None = None,
    table: bool = True,
) -> Plan:
    """Rank candidate sets for `need` with notice given on `notice_date` (module docstring).

    `base_document`: an inventory scenario with every candidate line's GPUs as leased pools.
    """
    valuer = Valuer(base_document, economics)
    factors = gpu_equivalent_factors(base_document, need.reference_accelerator)
    best, ranked, excluded = best_for(facts, need, notice_date, valuer, factors)
    result = Plan(need, notice_date, best, ranked, excluded)
    if table:
        for day in notice_dates(notice_date, need, facts):
            b, _, ex = best_for(facts, need, day, valuer, factors, keep=1)
            result.by_notice_date.append(NoticeRow(day, len(facts) - len(ex), b))
    result.evaluations = valuer.evaluations
    return result
