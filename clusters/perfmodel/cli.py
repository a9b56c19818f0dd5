"""Command line: ``python -m clusters.perfmodel SCENARIO.json [--json] [--sweep ...] [--plot ...]``.

:func:`main` also accepts an already-built :class:`Scenario` so another front end (the Django
management command) can reuse the table, JSON, sweep and plot output without a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .assessment import MODEL_VERSION, Assessment, assess
from .breakeven import Flip
from .scenario import Scenario, ScenarioError, load_json
from .sweep import SweepResult, parse_spec, sweep
from .uncertainty import KNOBS, UncertainDecision, decide, plot_tornado

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


def build_parser(prog: str = "python -m clusters.perfmodel") -> argparse.ArgumentParser:
    """The argument parser (also used to document the options)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Assess what capacity is worth for internal synchronous training.",
    )
    parser.add_argument("scenario", nargs="?", help="scenario JSON file (landlord.scenario/1)")
    parser.add_argument("--json", action="store_true", help="print the assessment JSON")
    parser.add_argument(
        "--sweep",
        metavar="FIELD=START:STOP:N[:log]",
        help="print a sensitivity table over one input",
    )
    parser.add_argument("--plot", metavar="FILE.svg|png", help="with --sweep: draw the curve")
    parser.add_argument(
        "--uncertainty",
        metavar="SAMPLES",
        type=int,
        nargs="?",
        const=10_000,
        help="also decide over the default ranges of the unknowns (default 10,000 draws)",
    )
    parser.add_argument(
        "--tornado", metavar="FILE.svg|png", help="with --uncertainty: draw the tornado"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    scenario: Scenario | None = None,
    stdout: SupportsWrite[str] | None = None,
    prog: str = "python -m clusters.perfmodel",
) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input).

    With ``scenario`` given, the positional file is not needed (and ignored if present).
    """
    out = stdout if stdout is not None else sys.stdout
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if scenario is None:
        if not args.scenario:
            parser.print_usage(sys.stderr)
            print("error: a scenario file is required", file=sys.stderr)
            return 2
        try:
            data = load_json(Path(args.scenario).read_bytes())
            scenario = Scenario.from_dict(data)
        except (OSError, ScenarioError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.plot and not args.sweep:
        print("error: --plot needs --sweep", file=sys.stderr)
        return 2
    if args.sweep:
        try:
            field, values = parse_spec(args.sweep)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result = sweep(scenario, field, values)
        if args.json:
            json.dump(sweep_to_dict(result), out, indent=2)
            out.write("\n")
        else:
            out.write(format_sweep(result))
        if args.plot:
            from .plot import plot_sweep

            path = plot_sweep(result, args.plot, title=scenario.name)
            out.write(f"plot written to {path}\n")
        return 0
    if args.tornado and args.uncertainty is None:
        print("error: --tornado needs --uncertainty", file=sys.stderr)
        return 2
    if args.uncertainty is not None and not 1 <= args.uncertainty <= 1_000_000:
        print("error: --uncertainty takes 1 to 1,000,000 draws", file=sys.stderr)
        return 2
    assessment = assess(scenario)
    decision = decide(scenario, samples=args.uncertainty) if args.uncertainty else None
    if args.json:
        doc = assessment.to_dict()
        if decision is not None:
            doc["uncertainty"] = decision.to_dict()
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        out.write(format_assessment(assessment))
        if decision is not None:
            out.write(format_uncertainty(decision))
    if decision is not None and args.tornado:
        path = plot_tornado(decision, args.tornado)
        out.write(f"tornado written to {path}\n")
    return 0


def format_uncertainty(d: UncertainDecision) -> str:
    """The decision over the unknowns: probability, percentiles, tornado as a table."""
    lines = [
        "",
        f"With its uncertainty ({d.samples:,} draws, seed {d.seed})",
        f"  P(reclaim beats renting)  {d.probability_reclaim:.1%}",
        f"  net USD  p5 {_fmt(d.net_p5_usd, ',.0f')}  p50 {_fmt(d.net_p50_usd, ',.0f')}"
        f"  p95 {_fmt(d.net_p95_usd, ',.0f')}",
        f"  net USD as scored (every input at the scenario's value) {_fmt(d.base_net_usd, ',.0f')}",
        "  what moves the answer (net at the low / high end of each input's factor or shift):",
    ]
    for b in d.tornado:
        kind = "×" if KNOBS[b.knob].kind == "factor" else "+"
        lines.append(
            f"    {b.knob:<28} {kind} {b.low:>8g} – {b.high:<8g}"
            f" {_fmt(b.net_at_low_usd, ',.0f'):>18} / {_fmt(b.net_at_high_usd, ',.0f'):<18}"
        )
    return "\n".join(lines) + "\n"


def _fmt(x: float | None, spec: str = ",.2f") -> str:
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return "—"
    return format(x, spec)


def format_assessment(a: Assessment) -> str:
    """A readable table of the assessment (headline, placements, break-evens, explanation)."""
    lines = [
        f"Landlord performance model {MODEL_VERSION} — {a.scenario_name or 'scenario'}",
        "",
        "Scenario as given",
        f"  step time            {_fmt(a.step_time_s)} s",
        f"  compute              {_fmt(a.compute_s)} s  (equal split {_fmt(a.compute_equal_s)} s,"
        f" proportional {_fmt(a.compute_proportional_s)} s)",
        f"  comm intra / inter   {_fmt(a.intra_site_s)} s / {_fmt(a.inter_site_s)} s"
        f"  (exposed {_fmt(a.exposed_comm_s)} s)",
        f"  stragglers           ×{_fmt(a.straggler_factor, '.3f')}"
        f"   pipeline ×{_fmt(a.pipeline_factor, '.3f')}   goodput {_fmt(a.goodput, '.3f')}",
        f"  effective            {_fmt(a.effective_pflops, ',.1f')} PFLOP/s"
        f"  efficiency {_fmt(100 * a.efficiency, '.1f')} %"
        f"  ({_fmt(a.achieved_tflops_per_gpu, ',.0f')} TFLOP/s per GPU, {a.gpus_used:,} GPUs)",
        "",
        "Placements",
        f"  {'placement':<44} {'GPUs':>9} {'step s':>9} {'PFLOP/s':>10} {'eff %':>6}"
        f" {'value USD':>16}",
    ]
    for p in a.placements:
        mark = "*" if p.key == a.best_placement else " "
        lines.append(
            f"{mark} {p.key[:44]:<44} {p.gpus_used:>9,} {_fmt(p.step_time_s):>9}"
            f" {_fmt(p.effective_pflops, ',.1f'):>10} {_fmt(100 * p.efficiency, '.1f'):>6}"
            f" {_fmt(p.internal_value_usd, ',.0f'):>16}"
        )
    be = a.break_even
    lines += [
        "",
        f"Valuation over {a.horizon_days:g} days (scarcity {a.scarcity_multiplier:g})",
        f"  internal value       {_fmt(a.internal_value_usd)} USD"
        f"  (best {_fmt(a.best_placement_value_usd)}, without leased pools"
        f" {_fmt(a.baseline_value_usd)})",
        f"  rent forgone         {_fmt(a.rent_usd)} USD",
        f"  net                  {_fmt(a.net_usd)} USD",
        f"  recommendation       {a.recommendation}",
        f"  break-even           scarcity {_fmt(be.scarcity_multiplier, ',.3f')}"
        f" | link {_fmt(be.link_bandwidth_gbps, ',.1f')} Gbit/s"
        f" | rent {_fmt(be.rent_per_month_usd)} USD/month",
        f"  flips (all links)    {_flip_text(be.link_bandwidth_flips, 'Gbit/s')}",
        *[
            f"  flips (only link {a.links[i][0]}–{a.links[i][1]}): {_flip_text(f, 'Gbit/s')}"
            for i, f in be.per_link
        ],
        *[f"  flips ({m} peak ×): {_flip_text(f, '×')}" for m, f in be.per_generation],
        "",
        "Why",
    ]
    lines += [f"  - {line}" for line in a.explanation]
    return "\n".join(lines) + "\n"


def _flip_text(flips: tuple[Flip, ...], unit: str) -> str:
    if not flips:
        return "none in the range"
    return ", ".join(f"{f.to} from {_fmt(f.at, ',.4g')} {unit}" for f in flips)


def format_sweep(r: SweepResult) -> str:
    """A sensitivity table: one row per swept value."""
    lines = [
        f"Sweep of {r.field}",
        f"  {r.field:>20} {'step s':>9} {'PFLOP/s':>10} {'best':>28} {'value USD':>16}"
        f" {'rent USD':>16} {'net USD':>17}  decision",
    ]
    for i, v in enumerate(r.values):
        lines.append(
            f"  {v:>20,.4g} {_fmt(float(r.step_time_s[i])):>9}"
            f" {_fmt(float(r.effective_pflops[i]), ',.1f'):>10} {r.best_placement[i][:28]:>28}"
            f" {_fmt(float(r.internal_value_usd[i]), ',.0f'):>16}"
            f" {_fmt(float(r.rent_usd[i]), ',.0f'):>16} {_fmt(float(r.net_usd[i]), ',.0f'):>17}"
            f"  {'reclaim' if r.reclaim[i] else 'keep_leased'}"
        )
    lines.append(f"  break-even {r.field}: {_fmt(r.break_even, ',.4g')}")
    return "\n".join(lines) + "\n"


def sweep_to_dict(r: SweepResult) -> dict[str, object]:
    """A sweep as JSON-ready lists (money to cents, inf → null)."""

    def nums(a: Sequence[float]) -> list[float | None]:
        return [float(x) if x == x and abs(x) != float("inf") else None for x in a]

    return {
        "field": r.field,
        "values": nums(list(r.values)),
        "step_time_s": nums(list(r.step_time_s)),
        "effective_pflops": nums(list(r.effective_pflops)),
        "best_placement": list(r.best_placement),
        "internal_value_usd": [round(float(x), 2) for x in r.internal_value_usd],
        "rent_usd": [round(float(x), 2) for x in r.rent_usd],
        "net_usd": [round(float(x), 2) for x in r.net_usd],
        "recommendation": ["reclaim" if x else "keep_leased" for x in r.reclaim],
        "break_even": r.break_even,
    }
