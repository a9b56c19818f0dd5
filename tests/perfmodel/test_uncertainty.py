"""Decisions with uncertainty: probability, percentiles, tornado, speed, chart."""

import json
from pathlib import Path

import numpy as np
import pytest

from clusters.perfmodel import Scenario, ScenarioError, assess
from clusters.perfmodel.uncertainty import (
    DEFAULT_RANGES,
    KNOBS,
    Range,
    decide,
    parse_ranges,
    plot_tornado,
    range_label,
)

from .scenarios import DEMO, demo, two_site_dict

EXAMPLES = sorted(DEMO.parent.glob("*.json"))


def _between(rent_scale: float = 1.0):
    """The two-site scenario with the rent set at its own value (× rent_scale): a coin-flip
    decision."""
    d = two_site_dict()
    d["economics"]["rent_per_month_usd"] = 0.0
    value = assess(Scenario.from_dict(d)).internal_value_usd
    d["economics"]["rent_per_month_usd"] = rent_scale * value / (12 * 90 / 365)
    return Scenario.from_dict(d)


def test_triangular_and_uniform_quantiles():
    u = np.random.default_rng(0).random(200_000)
    tri = Range("mfu_factor", 0.8, 1.2, 0.9).quantile(u)
    assert tri.min() >= 0.8
    assert tri.max() <= 1.2
    assert tri.mean() == pytest.approx((0.8 + 1.2 + 0.9) / 3, abs=2e-3)
    uni = Range("jitter_cv_shift", -0.05, 0.05).quantile(u)
    assert uni.mean() == pytest.approx(0.0, abs=1e-3)


def test_ten_thousand_samples_make_one_decision():
    # Its time (target ≤ 1 s) is measured by bench/bench_perfmodel.py beside a numpy floor, not
    # here: a timed unit test measures the machine's load as much as the code.
    d = decide(demo(), samples=10_000)
    assert d.samples == 10_000
    assert 0.0 <= d.probability_reclaim <= 1.0
    assert d.net_p5_usd <= d.net_p50_usd <= d.net_p95_usd


def test_demo_keeps_leasing_with_certainty():
    d = decide(demo(), samples=2000)
    assert d.probability_reclaim == 0.0
    assert d.net_p95_usd < 0


def test_a_balanced_decision_is_uncertain_and_scarcity_leads_the_tornado():
    d = decide(_between(), samples=4000, seed=3)
    assert 0.2 < d.probability_reclaim < 0.8
    assert d.net_p5_usd < 0 < d.net_p95_usd
    assert d.tornado[0].knob == "scarcity_factor"
    swings = [b.swing_usd for b in d.tornado]
    assert swings == sorted(swings, reverse=True)
    # Direction: more scarcity, more value; a costlier restart, less.
    bars = {b.knob: b for b in d.tornado}
    assert bars["scarcity_factor"].net_at_high_usd > bars["scarcity_factor"].net_at_low_usd
    assert bars["restart_cost_factor"].net_at_high_usd < bars["restart_cost_factor"].net_at_low_usd


def test_seeded_and_parts_add_draw_by_draw():
    sc = _between()
    a = decide(sc, samples=500, seed=1)
    assert decide(sc, samples=500, seed=1) == a.__class__(
        **{**a.__dict__, "seconds": a.seconds}
    ) or (decide(sc, samples=500, seed=1).probability_reclaim == a.probability_reclaim)
    both = decide([sc, sc], samples=500, seed=1)
    assert both.net_mean_usd == pytest.approx(2 * a.net_mean_usd, rel=1e-9)
    assert both.probability_reclaim == a.probability_reclaim


def test_narrow_ranges_reproduce_the_point_decision():
    sc = _between()
    point = assess(sc)
    ranges = [Range("scarcity_factor", 1.0, 1.0), Range("jitter_cv_shift", 0.0, 0.0)]
    d = decide(sc, ranges, samples=50)
    assert d.base_net_usd == pytest.approx(point.net_usd, rel=1e-6, abs=1.0)


@pytest.mark.parametrize(
    "doc",
    [
        "x",
        [{"knob": "nope", "low": 0, "high": 1}],
        [{"knob": "jitter_cv", "low": 0.01, "high": 0.05}],  # an absolute knob of schema /1
        [{"knob": "jitter_cv_shift", "low": 0.2, "high": 0.1}],
        [{"knob": "jitter_cv_shift", "low": 0.0, "high": 0.1, "mode": 0.5}],
        [{"knob": "mfu_factor", "low": float("nan"), "high": 1}],
        [{"knob": "mfu_factor", "low": 0.5, "high": 0.9}],  # excludes the scenario's own value
        [{"knob": "jitter_cv_shift", "low": 0.01, "high": 0.05}],
        [{"knob": "mfu_factor", "kind": "shift", "low": 0.9, "high": 1.1}],
        [
            {"knob": "jitter_cv_shift", "low": 0, "high": 0.1},
            {"knob": "jitter_cv_shift", "low": 0, "high": 1},
        ],
    ],
)
def test_bad_ranges_are_refused_with_a_path(doc):
    with pytest.raises(ScenarioError):
        parse_ranges(doc)


def test_tornado_drawn_to_svg_and_png(tmp_path):
    d = decide(_between(), samples=500)
    svg = plot_tornado(d, tmp_path / "t.svg").read_text()
    assert "<svg" in svg
    assert "P(reclaim beats renting)" in svg or "reclaim" in svg
    png = plot_tornado(d.to_dict(), tmp_path / "t.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_pruned_placements_value_the_draws_as_the_complete_list_does():
    """The draws use only the placements near the top at the tornado rows; on these draws the
    complete candidate list gives the same nets."""
    from clusters.perfmodel import candidate_placements
    from clusters.perfmodel.uncertainty import _net_for, _overrides
    from clusters.perfmodel.valuation import evaluate_and_value

    for sc in (_between(), demo()):
        ranges = DEFAULT_RANGES
        d = decide(sc, samples=10)  # shapes only
        rng = np.random.default_rng(9)
        u = rng.random((300, len(ranges)))
        draws = np.column_stack([r.quantile(u[:, j]) for j, r in enumerate(ranges)])
        base = np.array([[r.base for r in ranges]])
        swing = np.repeat(base, 2 * len(ranges), axis=0)
        for j, r in enumerate(ranges):
            swing[2 * j, j], swing[2 * j + 1, j] = r.low, r.high
        rows = np.vstack([draws, base, swing])
        pruned = _net_for(sc, ranges, rows)
        everything = candidate_placements(sc)
        _, val = evaluate_and_value(sc, everything, **_overrides(sc, everything, ranges, rows))
        assert pruned == pytest.approx(np.asarray(val.net_usd), rel=1e-12)
        assert d.samples == 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_base_is_the_assessed_decision_on_every_example(path: Path):
    """Every knob at its base leaves the scenario as given: the base net is the assessment's."""
    sc = Scenario.from_dict(json.loads(path.read_text()))
    d = decide(sc, samples=20)
    assert d.base_net_usd == pytest.approx(assess(sc).net_usd, rel=1e-9)


def _stated(**workload):
    """Two sites whose workload states every drawn input away from its default."""
    d = two_site_dict(
        load_imbalance_cv=0.05, slow_worker_fraction=0.01, slow_worker_slowdown=2.0, **workload
    )
    # Accelerators overriding the catalog's jitter and MTBF (pools take their model's).
    d["accelerators"] = {
        name: {"jitter_cv": 0.03, "mtbf_hours": 20_000} for name in ("H100", "A100", "B200")
    }
    d["links"][0]["efficiency"] = 0.7
    d["economics"]["restart_cost_s"] = 1200
    d["economics"]["scarcity_multiplier"] = 1.3
    return d


def test_the_base_keeps_stated_values_and_straddling_ranges_move_both_ways():
    sc = Scenario.from_dict(_stated())
    d = decide(sc, samples=20)
    assert d.base_net_usd == pytest.approx(assess(sc).net_usd, rel=1e-9)
    bars = {b.knob: b for b in d.tornado}
    # A stated 0.05 load imbalance can be lower or higher: the base lies strictly between.
    for knob in ("load_imbalance_cv_shift", "jitter_cv_shift", "slow_worker_fraction_shift"):
        lo, hi = bars[knob].net_at_low_usd, bars[knob].net_at_high_usd
        assert hi < d.base_net_usd < lo, knob
    # A 0.7 efficiency can be beaten or missed; the line rate can only be shared (its range
    # ends at the scenario's own rate, so its high end is the base).
    eff, line = bars["link_efficiency_factor"], bars["link_bandwidth_factor"]
    assert eff.net_at_low_usd < d.base_net_usd < eff.net_at_high_usd
    assert line.net_at_low_usd < line.net_at_high_usd == pytest.approx(d.base_net_usd)


def test_a_stated_zero_moves_only_upward():
    """No load imbalance and no slow workers: a shift's low end clips at 0 (the base); its high
    end costs. A factor would have left 0 at 0."""
    d = two_site_dict(slow_worker_slowdown=3.0)
    sc = Scenario.from_dict(d)
    ranges = [
        Range("load_imbalance_cv_shift", -0.03, 0.07, 0.0),
        Range("slow_worker_fraction_shift", -0.001, 0.002, 0.0),
    ]
    result = decide(sc, ranges, samples=20)
    for bar in result.tornado:
        assert bar.net_at_low_usd == pytest.approx(result.base_net_usd, rel=1e-12)
        assert bar.net_at_high_usd < result.base_net_usd


def test_the_probability_follows_a_shifted_or_widened_range():
    """A coin-flip decision: a scarcity range leaning upward raises P(reclaim), one leaning
    downward lowers it; widening a range around a losing base raises it."""
    sc = _between()

    def p(*ranges):
        return decide(sc, list(ranges), samples=2000, seed=5).probability_reclaim

    up = p(Range("scarcity_factor", 0.9, 1.3, 1.0))
    down = p(Range("scarcity_factor", 0.7, 1.1, 1.0))
    assert down < up
    losing = _between(rent_scale=1.2)
    narrow = decide(losing, [Range("scarcity_factor", 0.9, 1.1, 1.0)], samples=2000, seed=5)
    wide = decide(losing, [Range("scarcity_factor", 0.5, 2.0, 1.0)], samples=2000, seed=5)
    assert narrow.probability_reclaim < wide.probability_reclaim
    assert narrow.base_net_usd == wide.base_net_usd < 0


def test_ranges_round_trip_and_name_their_form():
    doc = [r.to_dict() for r in DEFAULT_RANGES]
    assert parse_ranges(doc) == DEFAULT_RANGES
    assert {r["kind"] for r in doc} == {"factor", "shift"}
    for r in DEFAULT_RANGES:
        identity = 1.0 if KNOBS[r.knob].kind == "factor" else 0.0
        assert r.low <= identity <= r.high
        assert r.base == identity
    assert range_label("scarcity_factor", 0.5, 2.0) == "scarcity × 0.5–2"
    assert range_label("jitter_cv_shift", -0.01, 0.03) == "jitter cv −0.01 to +0.03"
    assert range_label("jitter_cv", 0.01, 0.05) == "jitter_cv 0.01–0.05"  # an older document
