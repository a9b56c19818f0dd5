"""Charts and figures of the decision page, computed from the stored inputs (no queries).

Sensitivities run `perfmodel.sweep` on each part's stored scenario and add the parts: value
and rent against the scarcity multiplier, against inter-site link bandwidth (every link set to
the value) and against rent (each part's rent scaled by the same factor). Break-even: where
value meets rent (linear interpolation of net between grid points), marked on the chart.
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
    break_even: float | None


def _crossing(x: np.ndarray, net: np.ndarray) -> float | None:
    sign = net > 0
    flips = np.nonzero(sign != sign[0])[0]
    if flips.size == 0:
        return None
    i = int(flips[0])
    x0, x1, y0, y1 = x[i - 1], x[i], net[i - 1], net[i]
    if np.isfinite(y0) and np.isfinite(y1) and y1 != y0:
        return float(x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0))
    return float(x1)


def _scenarios(decision_inputs: dict[str, Any]) -> list[perfmodel.Scenario]:
    return [perfmodel.Scenario.from_dict(p["scenario"]) for p in decision_inputs["parts"]]


def sweep_sum(scenarios: list[perfmodel.Scenario], field: str, values: np.ndarray) -> Curve:
    value = np.zeros_like(values)
    rent = np.zeros_like(values)
    for s in scenarios:
        r = perfmodel.sweep(s, field, values)
        value += r.internal_value_usd
        rent += r.rent_usd
    return Curve(values, value, rent, _crossing(values, value - rent))


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
    return Curve(x, value, rent, _crossing(x, value - rent)), monthly


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
        if curve.break_even is not None:
            ax.axvline(curve.break_even, color=PALETTE[3], linestyle="--", linewidth=1)
            label = xfmt(curve.break_even) if xfmt else f"{curve.break_even:,.3g}"
            ax.annotate(
                f"break-even {label}",
                (curve.break_even, 0.92),
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
    """The three sensitivity charts, each with its break-even (None where none in range)."""
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
            "break_even": curve.break_even,
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
                "break_even": curve.break_even,
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
                "break_even": None,
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
            "break_even": curve.break_even,
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
    base, largest swing on top; zero (value = rent) dashed."""
    from clusters.perfmodel.uncertainty import KNOB_LABELS

    bars = list(reversed(uncertainty["tornado"]))
    base = uncertainty["net_usd"]["base"]
    with figure(7.5, 0.34 * max(len(bars), 3) + 1.2) as fig:
        ax = fig.add_subplot()
        labels = [
            f"{KNOB_LABELS.get(b['knob'], b['knob'])} {b['low']:g}–{b['high']:g}" for b in bars
        ]
        ax.barh(labels, [b["net_at_low_usd"] - base for b in bars], left=base, color=PALETTE[3])
        ax.barh(labels, [b["net_at_high_usd"] - base for b in bars], left=base, color=PALETTE[0])
        ax.axvline(base, color=PALETTE[7], linewidth=1.0)
        ax.axvline(0.0, color=PALETTE[7], linewidth=1.0, linestyle="--")
        money_ticks(ax.xaxis)  # money runs along x; the inputs label the bars on y
        ax.set_xlabel("net USD at the low end (red) and the high end (blue) of each input")
        ax.grid(axis="y", visible=False)
        return to_svg(fig, title="What moves the answer")


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
