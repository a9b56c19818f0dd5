"""Assessment: the model's output document (``"schema": "landlord.assessment/1"``).

Headline figures describe the scenario as given (all pools, the configured sync and split). The
money (internal value, net, recommendation) uses the best placement, since the operator would
use reclaimed capacity in its best way (see valuation.py for the leased-pool rule). SCHEMA.md
documents every field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from . import link, terms
from .breakeven import (
    Flip,
    link_bandwidth_break_even,
    link_bandwidth_flips,
    per_generation_flips,
    per_link_flips,
    rent_break_even,
    scarcity_break_even,
)
from .model import Outputs
from .placement import Placement, candidate_placements, uses_leased
from .scenario import Scenario
from .valuation import evaluate_and_value

ASSESSMENT_SCHEMA = "landlord.assessment/1"
MODEL_VERSION = "2.0.0"


@dataclass(frozen=True)
class PlacementFigures:
    """One candidate placement's figures (seconds, PFLOP/s, USD)."""

    key: str
    description: str
    pools: tuple[str, ...]
    sync: str
    split: str
    uses_leased: bool
    gpus_used: int
    step_time_s: float
    compute_s: float
    intra_site_s: float
    inter_site_s: float
    exposed_comm_s: float
    straggler_factor: float
    goodput: float
    effective_pflops: float
    efficiency: float
    internal_value_usd: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (money to cents, infinities as null)."""
        return {
            "key": self.key,
            "description": self.description,
            "pools": list(self.pools),
            "sync": self.sync,
            "split": self.split,
            "uses_leased": self.uses_leased,
            "gpus_used": self.gpus_used,
            "step_time_s": _num(self.step_time_s),
            "compute_s": _num(self.compute_s),
            "comm_s": {
                "intra_site": _num(self.intra_site_s),
                "inter_site": _num(self.inter_site_s),
                "total": _num(self.intra_site_s + self.inter_site_s),
            },
            "exposed_comm_s": _num(self.exposed_comm_s),
            "straggler_factor": _num(self.straggler_factor),
            "goodput": _num(self.goodput),
            "effective_pflops": _num(self.effective_pflops),
            "efficiency": _num(self.efficiency),
            "internal_value_usd": _money(self.internal_value_usd),
        }


@dataclass(frozen=True)
class BreakEven:
    """Input values at which the recommendation flips (None where none exists)."""

    scarcity_multiplier: float | None
    link_bandwidth_gbps: float | None
    rent_per_month_usd: float | None
    link_bandwidth_flips: tuple[Flip, ...] = ()
    per_link: tuple[tuple[int, tuple[Flip, ...]], ...] = ()
    per_generation: tuple[tuple[str, tuple[Flip, ...]], ...] = ()


@dataclass(frozen=True)
class Assessment:
    """The model's answer for one scenario (see SCHEMA.md for every field and unit)."""

    scenario_name: str
    step_time_s: float
    compute_s: float
    compute_equal_s: float
    compute_proportional_s: float
    intra_site_s: float
    inter_site_s: float
    overlap_s: float
    exposed_comm_s: float
    pipeline_factor: float
    straggler_factor: float
    goodput: float
    effective_pflops: float
    efficiency: float
    achieved_tflops_per_gpu: float
    gpus_used: int
    horizon_days: float
    scarcity_multiplier: float
    internal_value_usd: float
    best_placement_value_usd: float
    baseline_value_usd: float
    rent_usd: float
    net_usd: float
    recommendation: str
    break_even: BreakEven
    best_placement: str
    placements: tuple[PlacementFigures, ...]
    explanation: tuple[str, ...] = field(default=())
    links: tuple[tuple[str, str], ...] = field(default=())
    portfolio: tuple[dict[str, Any], ...] = field(default=())

    @property
    def comm_s(self) -> float:
        """Total communication per step, s (intra-site + inter-site)."""
        return self.intra_site_s + self.inter_site_s

    def placement(self, key: str) -> PlacementFigures:
        """The figures of the placement with this key."""
        for p in self.placements:
            if p.key == key:
                return p
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """The assessment document (JSON-ready; money rounded to cents, inf → null)."""
        be = self.break_even
        return {
            "schema": ASSESSMENT_SCHEMA,
            "model_version": MODEL_VERSION,
            "scenario": self.scenario_name,
            "step_time_s": _num(self.step_time_s),
            "compute_s": _num(self.compute_s),
            "compute_split_s": {
                "equal": _num(self.compute_equal_s),
                "proportional": _num(self.compute_proportional_s),
            },
            "comm_s": {
                "intra_site": _num(self.intra_site_s),
                "inter_site": _num(self.inter_site_s),
                "total": _num(self.comm_s),
            },
            "overlap_s": _num(self.overlap_s),
            "exposed_comm_s": _num(self.exposed_comm_s),
            "pipeline_factor": _num(self.pipeline_factor),
            "straggler_factor": _num(self.straggler_factor),
            "goodput": _num(self.goodput),
            "effective_pflops": _num(self.effective_pflops),
            "efficiency": _num(self.efficiency),
            "achieved_tflops_per_gpu": _num(self.achieved_tflops_per_gpu),
            "gpus_used": self.gpus_used,
            "horizon_days": _num(self.horizon_days),
            "scarcity_multiplier": _num(self.scarcity_multiplier),
            "internal_value_usd": _money(self.internal_value_usd),
            "best_placement_value_usd": _money(self.best_placement_value_usd),
            "baseline_value_usd": _money(self.baseline_value_usd),
            "rent_usd": _money(self.rent_usd),
            "net_usd": _money(self.net_usd),
            "recommendation": self.recommendation,
            "break_even": {
                "scarcity_multiplier": _num(be.scarcity_multiplier),
                "link_bandwidth_gbps": _num(be.link_bandwidth_gbps),
                "rent_per_month_usd": _money(be.rent_per_month_usd),
                "link_bandwidth_flips_gbps": _flips(be.link_bandwidth_flips),
                "per_link": [
                    {"link": i, "a": self.links[i][0], "b": self.links[i][1], "flips": _flips(f)}
                    for i, f in be.per_link
                ],
                "per_generation": [
                    {"accelerator": m, "speed_factor_flips": _flips(f)}
                    for m, f in be.per_generation
                ],
            },
            "best_placement": self.best_placement,
            **({"portfolio": list(self.portfolio)} if self.portfolio else {}),
            "placements": [p.to_dict() for p in self.placements],
            "explanation": list(self.explanation),
        }


def _portfolio(scenario: Scenario, placements: list[Placement]) -> tuple[dict[str, Any], ...]:
    """Each portfolio workload's share, value (its own best placement) and that placement."""
    rows = []
    for entry in scenario.portfolio:
        _, val = evaluate_and_value(scenario.with_workload(entry.workload), placements)
        rows.append(
            {
                "name": entry.name,
                "share": entry.share,
                "internal_value_usd": _money(float(val.internal_value_usd)),
                "weighted_value_usd": _money(entry.share * float(val.internal_value_usd)),
                "best_placement": placements[int(val.best_index)].key,
            }
        )
    return tuple(rows)


def _flips(items: tuple[Flip, ...]) -> list[dict[str, Any]]:
    return [{"at": _num(f.at), "to": f.to} for f in items]


def _num(x: float | None, digits: int = 6) -> float | None:
    """A finite float rounded to ``digits`` significant digits, else None (JSON null)."""
    if x is None or not math.isfinite(x):
        return None
    if x == 0.0:
        return 0.0
    return float(f"{x:.{digits}g}")


def _money(x: float | None) -> float | None:
    """USD rounded to cents (the Django side converts to Decimal at the seam)."""
    if x is None or not math.isfinite(x):
        return None
    return round(x, 2)


def assess(scenario: Scenario, *, searches: bool = True) -> Assessment:
    """Evaluate the scenario, every candidate placement, the valuation and the break-evens.

    One vectorized evaluation over all placements (placement 0 is the scenario as given), the
    leased-aware valuation of valuation.py, the break-evens of breakeven.py and a plain-words
    list of the dominant losses.

    ``searches=False`` leaves out the break-evens found by searching a range (link bandwidth,
    its flips, per link, per generation: about 90 % of the time of an assessment); they read
    None and empty. For a caller that shows the placements and the explanation only.
    """
    placements = candidate_placements(scenario)
    out, val = evaluate_and_value(scenario, placements)
    best = int(val.best_index)
    figures = tuple(_placement_figures(scenario, c, out, i) for i, c in enumerate(placements))
    given = out.take(0)
    econ = scenario.economics
    internal = float(val.internal_value_usd)
    rent = float(val.rent_usd)
    net = float(val.net_usd)
    scarcity = scarcity_break_even(internal, econ.scarcity_multiplier, rent, econ.horizon_days)
    rent_even = rent_break_even(internal, econ.horizon_days)
    break_even = (
        BreakEven(
            scarcity_multiplier=scarcity,
            link_bandwidth_gbps=link_bandwidth_break_even(scenario, placements),
            rent_per_month_usd=rent_even,
            link_bandwidth_flips=link_bandwidth_flips(scenario, placements),
            per_link=per_link_flips(scenario, placements),
            per_generation=per_generation_flips(scenario, placements),
        )
        if searches
        else BreakEven(scarcity, None, rent_even)
    )
    assessment = Assessment(
        scenario_name=scenario.name,
        step_time_s=given["step_time_s"],
        compute_s=given["compute_s"],
        compute_equal_s=given["compute_equal_s"],
        compute_proportional_s=given["compute_proportional_s"],
        intra_site_s=given["intra_site_s"],
        inter_site_s=given["inter_site_s"],
        overlap_s=given["overlap_s"],
        exposed_comm_s=given["exposed_comm_s"],
        pipeline_factor=given["pipeline_factor"],
        straggler_factor=given["straggler_factor"],
        goodput=given["goodput"],
        effective_pflops=given["useful_flops_per_s"] / 1e15,
        efficiency=given["efficiency"],
        achieved_tflops_per_gpu=given["achieved_tflops_per_gpu"],
        gpus_used=int(given["gpus_used"]),
        horizon_days=econ.horizon_days,
        scarcity_multiplier=econ.scarcity_multiplier,
        internal_value_usd=internal,
        best_placement_value_usd=float(val.best_value_usd),
        baseline_value_usd=float(val.baseline_value_usd),
        rent_usd=rent,
        net_usd=net,
        recommendation="reclaim" if bool(val.reclaim) else "keep_leased",
        break_even=break_even,
        best_placement=placements[best].key,
        placements=figures,
        links=tuple((lk.a, lk.b) for lk in scenario.links),
        portfolio=_portfolio(scenario, placements),
    )
    explanation = explain(scenario, placements, out, assessment)
    return replace(assessment, explanation=tuple(explanation))


def _placement_figures(scenario: Scenario, c: Placement, out: Outputs, i: int) -> PlacementFigures:
    row = out.take(i)
    return PlacementFigures(
        key=c.key,
        description=c.description,
        pools=tuple(scenario.pools[j].label for j in c.pools),
        sync=c.sync,
        split=c.split,
        uses_leased=uses_leased(scenario, c),
        gpus_used=int(row["gpus_used"]),
        step_time_s=row["step_time_s"],
        compute_s=row["compute_s"],
        intra_site_s=row["intra_site_s"],
        inter_site_s=row["inter_site_s"],
        exposed_comm_s=row["exposed_comm_s"],
        straggler_factor=row["straggler_factor"],
        goodput=row["goodput"],
        effective_pflops=row["useful_flops_per_s"] / 1e15,
        efficiency=row["efficiency"],
        internal_value_usd=row["internal_value_usd"],
    )


def _pct(x: float) -> str:
    return f"{100.0 * x:.0f} %" if x >= 0.01 else f"{100.0 * x:.1f} %"


def _usd(x: float) -> str:
    ax = abs(x)
    sign = "-" if x < 0 else ""
    if ax >= 1e9:
        return f"{sign}${ax / 1e9:.2f}B"
    if ax >= 1e6:
        return f"{sign}${ax / 1e6:.1f}M"
    return f"{sign}${ax:,.0f}"


def explain(
    scenario: Scenario, placements: list[Placement], out: Outputs, a: Assessment
) -> list[str]:
    """The dominant losses of the scenario as given, largest first, in plain words.

    Each loss is the share of the step (or of wall time, for failures) it costs, attributed in
    the order: split imbalance → pipeline bubble → stragglers → exposed communication, then
    failures and the DiLoCo quality penalty. Losses under 1 % are left out. Ends with the best
    placement and the money.
    """
    g = out.take(0)
    step = g["step_time_s"]
    losses: list[tuple[float, str]] = []
    if not math.isfinite(step):
        losses.append((1.0, "the scenario as given cannot run: a multi-site ring hop has no link"))
    else:
        ideal = g["compute_ideal_s"]
        split_s = ideal * (1.0 / max(1.0 - g["split_loss"], 1e-12) - 1.0)
        base = ideal + split_s
        bubble_s = base * (g["pipeline_factor"] - 1.0)
        strag_s = base * g["pipeline_factor"] * (g["straggler_factor"] - 1.0)
        if split_s / step >= 0.01:
            losses.append((split_s / step, _split_words(scenario, placements, out, g)))
        if bubble_s / step >= 0.01:
            w = scenario.workload
            losses.append(
                (
                    bubble_s / step,
                    (
                        f"pipeline bubble: {w.pipeline_parallel} stages over {w.microbatches} "
                        f"micro-batches add {bubble_s:.2f} s per step ({_pct(bubble_s / step)})"
                    ),
                )
            )
        if strag_s / step >= 0.01:
            losses.append(
                (
                    strag_s / step,
                    (
                        f"stragglers: per-step jitter across {int(g['gpus_used']):,} GPUs makes "
                        f"the step wait {_pct(g['straggler_factor'] - 1.0)} longer "
                        f"({strag_s:.2f} s)"
                    ),
                )
            )
        exposed = g["exposed_comm_s"]
        if exposed / step >= 0.01:
            losses.append((exposed / step, _comm_words(scenario, g)))
    if 1.0 - g["goodput"] >= 0.01:
        mtbf_min = g["cluster_mtbf_s"] / 60.0
        losses.append(
            (
                1.0 - g["goodput"],
                (
                    f"failures: one interruption every {mtbf_min:.0f} min across "
                    f"{int(g['gpus_used']):,} GPUs, "
                    f"{scenario.economics.restart_cost_s:.0f} s lost each, "
                    f"leave {_pct(g['goodput'])} goodput"
                ),
            )
        )
    if 1.0 - g["quality"] >= 0.01:
        losses.append(
            (
                1.0 - g["quality"],
                (f"DiLoCo quality penalty: {_pct(1.0 - g['quality'])} of useful progress"),
            )
        )
    losses.sort(key=lambda item: -item[0])
    lines = [text for _, text in losses]

    best = a.placement(a.best_placement)
    given = a.placements[0]
    if best.key != given.key and given.effective_pflops > 0.0:
        ratio = best.effective_pflops / given.effective_pflops
        lines.append(
            f"best placement: {best.description} delivers {best.effective_pflops:,.0f} PFLOP/s "
            f"({ratio:.1f}× the {given.effective_pflops:,.0f} PFLOP/s of the scenario as given, "
            f"efficiency {_pct(best.efficiency)} vs {_pct(given.efficiency)})"
        )
    elif best.key != given.key:
        lines.append(f"best placement: {best.description} ({best.effective_pflops:,.0f} PFLOP/s)")
    if a.horizon_days > 0.0:
        verdict = "reclaim" if a.recommendation == "reclaim" else "keep leased"
        lines.append(
            f"over {a.horizon_days:g} days at scarcity {a.scarcity_multiplier:g} the capacity is "
            f"worth {_usd(a.internal_value_usd)} against {_usd(a.rent_usd)} of rent: {verdict}"
            + (
                f" (break-even scarcity {a.break_even.scarcity_multiplier:.2f})"
                if a.break_even.scarcity_multiplier is not None
                else ""
            )
        )
    else:
        lines.append("the horizon is empty: nothing to gain by reclaiming")
    return lines


def _split_words(
    scenario: Scenario, placements: list[Placement], out: Outputs, g: dict[str, float]
) -> str:
    idx = int(g["slowest_pool"])
    slow = scenario.pools[idx]
    accels = scenario.accelerators
    pools_in = [scenario.pools[i] for i in placements[0].pools]
    speeds = {
        p.accelerator: accels[p.accelerator].peak_tflops * accels[p.accelerator].mfu
        for p in pools_in
    }
    fastest = max(speeds, key=lambda k: speeds[k])
    idle = 1.0 - speeds[slow.accelerator] / speeds[fastest]
    if placements[0].split == "equal":
        prop = g["compute_proportional_s"] / g["pipeline_factor"]
        eq = g["compute_equal_s"] / g["pipeline_factor"]
        return (
            f"the step waits for the slowest pool ({slow.label}, {slow.accelerator}): the equal "
            f"split leaves the {fastest}s idle {_pct(idle)} of each step and wastes "
            f"{_pct(g['split_loss'])} of the compute (a speed-proportional split: {prop:.2f} s "
            f"instead of {eq:.2f} s)"
        )
    return (
        f"the memory-capped proportional split still waits for {slow.label}: "
        f"{_pct(g['split_loss'])} of the compute is lost to imbalance"
    )


def _comm_words(scenario: Scenario, g: dict[str, float]) -> str:
    exposed = g["exposed_comm_s"]
    inter = g["inter_site_s"]
    if inter >= g["intra_site_s"] and inter > 0.0:
        usable_gbps = g["slowest_hop_bytes_per_s"] * 8.0 / 1e9
        words = (
            f"inter-site sync ({scenario.workload.sync}) runs at {usable_gbps:,.0f} Gbit/s "
            f"usable on the slowest hop and is exposed for {exposed:.2f} s per step "
            f"against {g['compute_s']:.2f} s of compute"
        )
        bound = _bound_links(scenario, g["hop_connections"])
        if bound:
            words += "; " + "; ".join(bound)
        return words
    return (
        f"intra-site all-reduce is exposed for {exposed:.2f} s per step "
        f"(overlap window {g['overlap_s']:.2f} s)"
    )


def _bound_links(scenario: Scenario, connections: float) -> list[str]:
    """Links between sites the scenario uses whose window or loss, not their line rate, sets
    the throughput, with the flows the placement puts on them: ``streams`` per connection,
    the hop's ``connections`` spread evenly over its direct links (model.py, docs/model.md
    "Links"). Links with a calibration's measured throughput are left out: nothing is derived
    for them."""
    w = scenario.workload
    ranks = w.tensor_parallel * w.pipeline_parallel
    used = {p.site for p in scenario.pools if p.gpus >= ranks}
    per_pair: dict[frozenset[str], int] = {}
    for lk in scenario.links:
        per_pair[frozenset((lk.a, lk.b))] = per_pair.get(frozenset((lk.a, lk.b)), 0) + 1
    notes = []
    for lk in scenario.links:
        if lk.usable_gbps is not None or not {lk.a, lk.b} <= used:
            continue
        flows = lk.streams * max(connections, 1.0) / per_pair[frozenset((lk.a, lk.b))]
        rtt = 2.0 * float(terms.one_way_latency_s(lk.route_km, lk.latency_us))
        window = math.inf if lk.window_bytes is None else lk.window_bytes
        usable = float(
            terms.link_usable_bytes_per_s(
                lk.bandwidth_gbps, lk.efficiency, window, flows, rtt, lk.loss_rate, lk.mss_bytes
            )
        )
        line, windowed, lossy = (
            float(b)
            for b in link.bounds_bytes_per_s(
                terms.gbps_to_bytes_per_s(lk.bandwidth_gbps),
                lk.efficiency,
                window,
                flows,
                rtt,
                lk.loss_rate,
                lk.mss_bytes,
            )
        )
        if usable >= line * 0.999:
            continue
        head = (
            f"link {lk.a}–{lk.b} ({lk.bandwidth_gbps:,.0f} Gbit/s nominal) runs at "
            f"{usable * 8 / 1e9:,.0f} Gbit/s,"
        )
        if windowed <= lossy:
            notes.append(
                f"{head} window-bound ({flows:,.4g} flows × {window / 2**20:g} MiB per "
                f"{1e3 * rtt:.2f} ms round trip)"
            )
        else:
            notes.append(
                f"{head} loss-bound ({flows:,.4g} flows losing {lk.loss_rate:g} of "
                f"{lk.mss_bytes:g}-byte packets over a {1e3 * rtt:.2f} ms round trip)"
            )
    return notes
