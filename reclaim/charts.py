"""Charts and figures of the decision page, computed from the stored inputs (no queries).

Sensitivities run `perfmodel.sweep` on each part's stored scenario and add the parts: value
and rent against the scarcity multiplier, against inter-site link bandwidth (every link set to
the value) and against rent (each part's rent scaled by the same factor). Break-evens: every
point where value meets rent (linear interpolation of net between grid points), each marked on
the chart. `flip_rows`: every flip the model found for a part (all links at one bandwidth, one
link alone, one accelerator generation's speed), in words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from clusters import perfmodel
from common.plots import PALETTE, figure, money_short, money_ticks, to_svg


@dataclass(frozen=True)
class Curve:
    x: np.ndarray
    value: np.ndarray
    rent: np.ndarray
    break_evens: tuple[float, ...]  # every crossing of value and rent on the grid, ascending


def crossings(x: np.ndarray, net: np.ndarray) -> tuple[float, ...]:
    """Every x where net changes sign between grid points (linear interpolation), not only the
    first: value need not meet rent once (the recommendation is not monotone in every input)."""
    sign = net > 0
    out = []
    for i in (np.nonzero(sign[1:] != sign[:-1])[0] + 1).tolist():
        x0, x1, y0, y1 = x[i - 1], x[i], net[i - 1], net[i]
        if np.isfinite(y0) and np.isfinite(y1) and y1 != y0:
            out.append(float(x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0)))
        else:
            out.append(float(x1))
    return tuple(out)


def _scenarios(decision_inputs: dict[str, Any]) -> list[perfmodel.Scenario]:
    return [perfmodel.Scenario.from_dict(p["scenario"]) for p in decision_inputs["parts"]]


def sweep_sum(scenarios: list[perfmodel.Scenario], field: str, values: np.ndarray) -> Curve:
    value = np.zeros_like(values)
    rent = np.zeros_like(values)
    for s in scenarios:
        r = perfmodel.sweep(s, field, values)
        value += r.internal_value_usd
        rent += r.rent_usd
    return Curve(values, value, rent, crossings(values, value - rent))


def rent_curve(scenarios: list[perfmodel.Scenario], factors: np.ndarray) -> tuple[Curve, float]:
    """Value and rent against the monthly rent of the candidate lines (all parts scaled)."""
    value = np.zeros_like(factors)
    rent = np.zeros_like(factors)
    monthly = 0.0
    for s in scenarios:
        rpm = s.economics.rent_per_month_usd
        monthly += rpm
        r = perfmodel.sweep(s, "rent_per_month_usd", rpm * factors)
        value += r.internal_value_usd
        rent += r.rent_usd
    x = monthly * factors
    return Curve(x, value, rent, crossings(x, value - rent)), monthly


def curve_chart(
    curve: Curve,
    *,
    xlabel: str,
    title: str,
    current: float,
    log: bool = False,
    xfmt: Callable[[float], str] | None = None,
) -> str:
    """Internal value and rent forgone (USD over the window) against one input."""
    with figure(7.5, 3.2) as fig:
        ax = fig.add_subplot()
        ax.plot(curve.x, curve.value, color=PALETTE[0], label="internal value")
        ax.plot(curve.x, curve.rent, color=PALETTE[1], label="rent forgone")
        for k, at in enumerate(curve.break_evens):
            ax.axvline(at, color=PALETTE[3], linestyle="--", linewidth=1)
            label = xfmt(at) if xfmt else f"{at:,.3g}"
            ax.annotate(
                f"break-even {label}",
                (at, 0.92 - 0.08 * (k % 4)),  # stepped down so neighbouring labels do not meet
                xycoords=("data", "axes fraction"),
                xytext=(4, 0),
                textcoords="offset points",
                color=PALETTE[3],
                fontsize=8,
            )
        ax.axvline(current, color=PALETTE[7], linestyle=":", linewidth=1, label="as scored")
        if log:
            ax.set_xscale("log")
        if xfmt:
            ax.xaxis.set_major_formatter(lambda v, _pos: xfmt(v))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("USD over the window")
        money_ticks(ax.yaxis)
        ax.legend(loc="upper left", fontsize=8)
        return to_svg(fig, title=title)


def sensitivity_charts(decision_inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The three sensitivity charts, each with every break-even in its range (none: empty)."""
    scenarios = _scenarios(decision_inputs)
    if not scenarios or all(s.economics.horizon_days <= 0 for s in scenarios):
        return []
    scarcity = scenarios[0].economics.scarcity_multiplier
    out = []
    be = sweep_sum(scenarios, "scarcity_multiplier", np.array([scarcity]))
    # Span to twice the break-even (or the scored value), so the crossing is on the chart.
    total_value, total_rent = float(be.value[0]), float(be.rent[0])
    guess = scarcity * total_rent / total_value if total_value > 0 else scarcity
    top = max(2.0, 2.0 * scarcity, 2.0 * guess)
    curve = sweep_sum(scenarios, "scarcity_multiplier", np.linspace(0.0, top, 121))
    out.append(
        {
            "key": "scarcity",
            "title": "Value and rent against the scarcity multiplier",
            "break_evens": curve.break_evens,
            "unit": "×",
            "svg": curve_chart(
                curve,
                xlabel="scarcity multiplier (×)",
                title="Value and rent against the scarcity multiplier",
                current=scarcity,
            ),
        }
    )
    if any(s.links for s in scenarios):
        curve = sweep_sum(scenarios, "link_bandwidth_gbps", np.geomspace(1.0, 1e6, 121))
        current = min(link.bandwidth_gbps for s in scenarios for link in s.links)
        out.append(
            {
                "key": "bandwidth",
                "title": "Value and rent against inter-site link bandwidth",
                "break_evens": curve.break_evens,
                "unit": "Gbit/s",
                "svg": curve_chart(
                    curve,
                    xlabel="every inter-site link, Gbit/s (log)",
                    title="Value and rent against inter-site link bandwidth",
                    current=current,
                    log=True,
                ),
            }
        )
    else:
        out.append(
            {
                "key": "bandwidth",
                "title": "Value against inter-site link bandwidth",
                "break_evens": (),
                "unit": "Gbit/s",
                "svg": "",
                "note": "All of this capacity is on one campus: no inter-site link in the "
                "scenario, so bandwidth between campuses does not change the answer.",
            }
        )
    curve, monthly = rent_curve(scenarios, np.linspace(0.0, 2.0, 121))
    out.append(
        {
            "key": "rent",
            "title": "Value and rent against the monthly rent",
            "break_evens": curve.break_evens,
            "unit": "USD/month",
            "svg": curve_chart(
                curve,
                xlabel="rent of these lines, USD per month",
                title="Value and rent against the monthly rent",
                current=monthly,
                xfmt=money_short,
            ),
        }
    )
    return out


# What the model searched for flips (clusters/perfmodel/SCHEMA.md, "Break-evens").
BANDWIDTH_RANGE = "1 Gbit/s to 1 Pbit/s"
SPEED_RANGE = "0.1× to 10× its peak"


def bandwidth(gbps: float) -> str:
    """A link bandwidth in the largest unit under it: `400 Gbit/s`, `1.6 Tbit/s`, `2 Pbit/s`."""
    for unit, scale in (("Pbit/s", 1e6), ("Tbit/s", 1e3)):
        if gbps >= scale:
            return f"{gbps / scale:,.3g} {unit}"
    return f"{gbps:,.3g} Gbit/s"


def _flip_words(flips: list[dict[str, Any]], fmt: Callable[[float], str], none: str) -> list[str]:
    """`reclaim wins above 1.6 Tbit/s`, one per flip in ascending order (`to` wins above `at`)."""
    if not flips:
        return [f"no flip from {none}"]
    winner = {"reclaim": "reclaim wins", "keep_leased": "keeping it leased wins"}
    return [f"{winner.get(f['to'], f['to'])} above {fmt(f['at'])}" for f in flips]


def flip_rows(break_even: dict[str, Any], site_names: dict[str, str]) -> list[dict[str, Any]]:
    """Every flip of one part's assessment, as rows of (what varies, the flips in words): all
    links at one bandwidth and each link alone (named by its campuses) where there are links,
    each accelerator generation's speed. `site_names`: campus slug → name (a slug without a
    name is shown as is)."""

    def speed(factor: float) -> str:
        return f"{factor:.3g}× its peak"

    links = break_even.get("per_link", [])  # one entry per link; none on a single campus
    rows = []
    if links:
        rows.append(
            {
                "what": "every inter-site link at one bandwidth",
                "flips": _flip_words(
                    break_even.get("link_bandwidth_flips_gbps", []), bandwidth, BANDWIDTH_RANGE
                ),
            }
        )
    for link in links:
        a, b = (site_names.get(x, x) for x in (link["a"], link["b"]))
        rows.append(
            {
                "what": f"{a} ↔ {b} alone",
                "flips": _flip_words(link["flips"], bandwidth, BANDWIDTH_RANGE),
            }
        )
    for gen in break_even.get("per_generation", []):
        rows.append(
            {
                "what": f"{gen['accelerator']} speed",
                "flips": _flip_words(gen["speed_factor_flips"], speed, SPEED_RANGE),
            }
        )
    return rows


def placements_chart(assessment: dict[str, Any]) -> str:
    """Useful throughput of every candidate placement; the best one highlighted."""
    rows = assessment["placements"]
    best = assessment["best_placement"]
    with figure(7.5, 0.32 * max(len(rows), 3) + 1.0) as fig:
        ax = fig.add_subplot()
        keys = [p["key"] for p in rows]
        values = [p["effective_pflops"] or 0.0 for p in rows]
        colors = [PALETTE[2] if k == best else PALETTE[0] for k in keys]
        ax.barh(keys, values, color=colors)
        ax.invert_yaxis()
        ax.set_xlabel("useful throughput, PFLOP/s (after stragglers, failures)")
        ax.grid(axis="y", visible=False)
        return to_svg(fig, title="Placements compared")


def tornado_chart(uncertainty: dict[str, Any]) -> str:
    """The inputs that move the answer most: net at each knob's low and high end around the
    base (the decision as scored; in a stored /1 document the ranges' modes), largest swing on
    top; zero (value = rent) dashed. Bars are named as the document's schema drew them."""
    from clusters.perfmodel.uncertainty import SCHEMA, range_label

    bars = list(reversed(uncertainty["tornado"]))
    base = uncertainty["net_usd"]["base"]
    schema = uncertainty.get("schema", SCHEMA)
    with figure(7.5, 0.34 * max(len(bars), 3) + 1.2) as fig:
        ax = fig.add_subplot()
        labels = [range_label(b["knob"], b["low"], b["high"], schema) for b in bars]
        ax.barh(labels, [b["net_at_low_usd"] - base for b in bars], left=base, color=PALETTE[3])
        ax.barh(labels, [b["net_at_high_usd"] - base for b in bars], left=base, color=PALETTE[0])
        ax.axvline(base, color=PALETTE[7], linewidth=1.0)
        ax.axvline(0.0, color=PALETTE[7], linewidth=1.0, linestyle="--")
        money_ticks(ax.xaxis)  # money runs along x; the inputs label the bars on y
        ax.set_xlabel("net USD at the low end (red) and the high end (blue) of each input")
        ax.grid(axis="y", visible=False)
        return to_svg(fig, title="What moves the answer")


# How each stored range moved its input, in the words of the decision page ("": not known).
DRAWN_AS = {
    "factor": "× the scored value",
    "shift": "+ the scored value",
    "value": "sets the value",
    "": "not recorded",
}


def uncertainty_view(uncertainty: dict[str, Any]) -> dict[str, Any]:
    """The stored uncertainty document with the words its schema means: how each range was
    drawn (``drawn_as``), what the draws were centred on (``drawn_around``), what the base is
    (``base_meaning``) and, for a document stored before /2, a ``note`` saying so (else "")."""
    from clusters.perfmodel.uncertainty import SCHEMA_1, stored_kind

    schema = uncertainty.get("schema")
    ranges = [
        {**r, "drawn_as": DRAWN_AS[stored_kind(schema, r)]} for r in uncertainty.get("ranges", [])
    ]
    if schema != SCHEMA_1:
        return {
            **uncertainty,
            "ranges": ranges,
            "drawn_around": "each drawn around the value this decision was scored with",
            "base_meaning": "as scored (every input at its scored value, the centre of the chart)",
            "note": "",
        }
    return {
        **uncertainty,
        "ranges": ranges,
        "drawn_around": "each drawn from its range below (a factor multiplies the scored value, "
        "the other ranges set the value outright)",
        "base_meaning": "at the ranges' modes (every input at its range's mode, or the middle "
        "of a uniform range; the centre of the chart), not the decision as scored",
        "note": "Stored before the ranges were drawn around the scored values "
        f"({SCHEMA_1}): ranges that set a value replace the scored one. "
        "Re-scoring gives the current form.",
    }


def losses(assessment: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a step's time goes, scenario as given: seconds per step and share of the step."""
    step = assessment["step_time_s"] or 0.0
    equal = assessment["compute_split_s"]["equal"] or 0.0
    proportional = assessment["compute_split_s"]["proportional"] or 0.0
    compute = assessment["compute_s"] or 0.0
    straggler = assessment["straggler_factor"] or 1.0
    goodput = assessment["goodput"] or 0.0
    rows = [
        (
            "slowest pool (equal split waits for it)",
            max(0.0, equal - proportional) * straggler,
            "compute an equal split wastes against a speed-proportional one",
        ),
        (
            "exposed communication",
            assessment["exposed_comm_s"] or 0.0,
            "all-reduce time not hidden behind compute",
        ),
        (
            "stragglers",
            compute - compute / straggler if straggler else 0.0,
            f"the step waits for the slowest of many workers (×{straggler:.3f})",
        ),
        (
            "failures",
            step * (1 / goodput - 1) if goodput else 0.0,
            f"wall time lost to interruptions and restarts (goodput {goodput:.0%})",
        ),
    ]
    return [
        {
            "name": name,
            "seconds": seconds,
            "share": seconds / step if step else 0.0,
            "why": why,
        }
        for name, seconds, why in rows
    ]
