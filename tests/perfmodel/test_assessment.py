"""Assessment: the demo story, placements, break-evens that really flip, the JSON."""

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.perfmodel import Scenario, assess, evaluate, inputs_of, topology_of
from clusters.perfmodel.breakeven import link_bandwidth_break_even
from clusters.perfmodel.placement import candidate_placements
from clusters.perfmodel.valuation import evaluate_and_value

from .scenarios import demo, demo_dict, two_site_dict


def test_demo_synchronous_three_campus_training_is_far_less_efficient():
    """The demo story: campus 1 (~200k mixed H100/H200/GB200/A100) plus two Blackwell
    campuses 18–27 km apart, two aging 400 Gbit/s links (window-bound for one connection, but
    the hierarchical sync's thousands of parallel rings fill them) and one 6.4 Tbit/s link.
    Training synchronously across all three is far less efficient than the best single campus
    or homogeneous placement, and the assessment says why."""
    a = assess(demo())
    given = a.placement("all")
    best = a.placement(a.best_placement)
    single_or_homogeneous = [p for p in a.placements if p.key.startswith(("site:", "accelerator:"))]
    best_alt = max(p.efficiency for p in single_or_homogeneous)
    assert given.efficiency < 0.1 * best_alt
    assert best.effective_pflops > 10 * given.effective_pflops
    assert a.best_placement != "all"
    text = " ".join(a.explanation)
    assert "inter-site sync" in text
    assert "exposed" in text
    assert "runs at 360 Gbit/s usable" in text  # the 400 Gbit/s links' line rate binds
    assert "window-bound" not in text
    assert "equal split" in text
    assert "A100" in text
    # The losses come largest first: inter-campus sync dominates.
    assert a.explanation[0].startswith("inter-site sync")


def test_the_explanation_names_a_window_bound_link_with_the_flows_it_carries():
    """A flat ring puts TP·PP = 32 connections of 4 flows on the two-site link: 128 flows of
    64 KiB over a 0.43 ms round trip are 155 Gbit/s, below the 720 of the line."""
    d = two_site_dict(sync="flat_ring", overlap_s=0.0)
    d["links"][0]["window_bytes"] = 65536
    text = " ".join(assess(Scenario.from_dict(d)).explanation)
    assert (
        "runs at 155 Gbit/s, window-bound (128 flows × 0.0625 MiB per 0.43 ms round trip)" in text
    )
    d["workload"]["sync"] = "hierarchical"  # 32 × 32 connections: the line binds
    assert "window-bound" not in " ".join(assess(Scenario.from_dict(d)).explanation)


def test_the_explanation_names_a_loss_bound_link_at_the_models_own_figure():
    """A lossy link is named by its loss, at the throughput the model uses for that hop; a
    calibrated link (measured throughput) is not explained by derived bounds."""
    d = two_site_dict(sync="flat_ring", overlap_s=0.0)
    d["links"][0].update({"window_bytes": None, "loss_rate": 1e-3, "mss_bytes": 1448})
    sc = Scenario.from_dict(d)
    text = " ".join(assess(sc).explanation)
    hop_gbps = float(evaluate(topology_of(sc), inputs_of(sc)).slowest_hop_bytes_per_s) * 8 / 1e9
    assert f"runs at {hop_gbps:,.0f} Gbit/s, loss-bound (128 flows losing 0.001 of" in text
    assert "window-bound" not in text
    d["links"][0]["usable_gbps"] = 100.0
    assert "-bound (" not in " ".join(assess(Scenario.from_dict(d)).explanation)


def test_demo_today_keep_leased_but_break_even_exists():
    """At $1.25B + $0.92B a month of rent on campus 1 and scarcity 1 the answer is keep
    leased; a higher scarcity multiplier flips it."""
    a = assess(demo())
    assert a.recommendation == "keep_leased"
    assert a.rent_usd == pytest.approx(2.17e9 * 12 * 90 / 365)
    s_star = a.break_even.scarcity_multiplier
    assert s_star is not None
    assert s_star > 1
    for factor, expected in ((0.999, "keep_leased"), (1.001, "reclaim")):
        d = demo_dict()
        d["economics"]["scarcity_multiplier"] = s_star * factor
        assert assess(Scenario.from_dict(d)).recommendation == expected


def test_rent_break_even_flips_the_recommendation():
    a = assess(demo())
    rent_star = a.break_even.rent_per_month_usd
    assert rent_star is not None
    assert 0 < rent_star < 2.17e9
    for factor, expected in ((1.001, "keep_leased"), (0.999, "reclaim")):
        d = demo_dict()
        d["economics"]["rent_per_month_usd"] = rent_star * factor
        assert assess(Scenario.from_dict(d)).recommendation == expected


def _link_scenario(rent):
    d = two_site_dict(overlap_s=0.0)
    d["economics"]["rent_per_month_usd"] = rent
    return Scenario.from_dict(d)


@settings(max_examples=15, deadline=None)
@given(rent=st.floats(1e5, 3e7))
def test_link_break_even_actually_flips(rent):
    """Evaluate every placement with all links just below and just above the break-even."""
    sc = _link_scenario(rent)
    places = candidate_placements(sc)
    x_star = link_bandwidth_break_even(sc, places)
    if x_star is None:
        # No flip in range: the recommendation is the same at both ends.
        ends = np.array([1.0, 1e6])
        _, val = evaluate_and_value(
            sc, places, bandwidth_gbps=np.broadcast_to(ends[:, None, None], (2, 1, 1))
        )
        assert val.reclaim[0] == val.reclaim[1]
        return
    around = np.array([x_star * 0.999, x_star * 1.001])
    _, val = evaluate_and_value(
        sc, places, bandwidth_gbps=np.broadcast_to(around[:, None, None], (2, 1, 1))
    )
    assert val.reclaim[0] != val.reclaim[1]


def test_link_break_even_exists_for_a_link_bound_scenario():
    """Two sites of equal H100s, nothing leased: only the joint placement can beat the rent,
    and only once the link is fast enough."""
    d = {
        "workload": {
            "params": 70e9,
            "tokens_per_step": 4e6,
            "tensor_parallel": 8,
            "overlap_s": 0.0,
        },
        "pools": [
            {"site": s, "accelerator": "H100", "gpus": 4096, "fabric_gbps_per_gpu": 400}
            for s in ("east", "west")
        ],
        "links": [{"a": "east", "b": "west", "bandwidth_gbps": 100, "route_km": 30}],
        "economics": {"horizon_days": 30},
    }
    single = assess(Scenario.from_dict(d)).placement("site:east").internal_value_usd
    d["economics"]["rent_per_month_usd"] = 1.3 * single * 365 / (12 * 30)
    a = assess(Scenario.from_dict(d))
    x_star = a.break_even.link_bandwidth_gbps
    assert x_star is not None
    assert x_star > 100
    assert a.recommendation == "keep_leased"
    d["links"][0]["bandwidth_gbps"] = x_star * 1.01
    assert assess(Scenario.from_dict(d)).recommendation == "reclaim"


def test_empty_horizon_never_recommends_reclaim():
    d = two_site_dict()
    d["economics"].update(horizon_days=0, rent_per_month_usd=0, scarcity_multiplier=100)
    a = assess(Scenario.from_dict(d))
    assert a.recommendation == "keep_leased"
    assert a.break_even.scarcity_multiplier is None
    assert a.break_even.rent_per_month_usd is None


@settings(max_examples=30, deadline=None)
@given(s=st.floats(0.01, 40))
def test_assessed_value_is_linear_in_scarcity(s):
    base = demo()
    a1 = assess(replace(base, economics=replace(base.economics, scarcity_multiplier=1.0)))
    a_s = assess(replace(base, economics=replace(base.economics, scarcity_multiplier=s)))
    assert a_s.internal_value_usd == pytest.approx(s * a1.internal_value_usd, rel=1e-9)


def test_placements_cover_every_candidate_use():
    keys = {p.key for p in assess(demo()).placements}
    for expected in (
        "all",
        "all/diloco",
        "site:campus-1",
        "site:campus-2",
        "site:campus-3",
        "accelerator:H100",
        "accelerator:GB200",
        "site:campus-1/accelerator:GB200",
        "accelerator:A100",
        "sites:campus-2+campus-3",
    ):
        assert expected in keys


def test_assessment_json_has_the_documented_fields():
    doc = json.loads(json.dumps(assess(demo()).to_dict()))
    assert doc["schema"] == "landlord.assessment/1"
    for key in (
        "step_time_s",
        "compute_s",
        "comm_s",
        "exposed_comm_s",
        "straggler_factor",
        "goodput",
        "effective_pflops",
        "efficiency",
        "internal_value_usd",
        "rent_usd",
        "net_usd",
        "recommendation",
        "break_even",
        "placements",
        "best_placement",
        "explanation",
        "model_version",
    ):
        assert key in doc
    assert set(doc["comm_s"]) == {"intra_site", "inter_site", "total"}
    assert set(doc["break_even"]) == {
        "scarcity_multiplier",
        "link_bandwidth_gbps",
        "rent_per_month_usd",
        "link_bandwidth_flips_gbps",
        "per_link",
        "per_generation",
    }
    assert doc["net_usd"] == round(doc["net_usd"], 2)
    assert doc["recommendation"] in ("reclaim", "keep_leased")


def test_reclaim_is_measured_against_the_best_use_of_capacity_not_under_lease():
    """Free capacity alone can beat the mix; reclaiming is worth only what it adds to that."""
    from clusters.perfmodel import Scenario, assess

    doc = {
        "schema": "landlord.scenario/1",
        "workload": {"params": 7e10, "tokens_per_step": 4 * 2**20, "tensor_parallel": 8},
        "pools": [
            {
                "site": "a",
                "accelerator": "A100",
                "gpus": 512,
                "fabric_gbps_per_gpu": 200,
                "leased": True,
            },
            {"site": "b", "accelerator": "B200", "gpus": 4096, "fabric_gbps_per_gpu": 400},
        ],
        "links": [{"a": "a", "b": "b", "bandwidth_gbps": 100, "route_km": 30}],
        "economics": {"rent_per_month_usd": 1e6, "horizon_days": 30},
    }
    a = assess(Scenario.from_dict(doc)).to_dict()
    assert a["baseline_value_usd"] == pytest.approx(
        max(p["internal_value_usd"] for p in a["placements"] if not p["uses_leased"])
    )
    assert a["baseline_value_usd"] > 0
    assert a["internal_value_usd"] < a["best_placement_value_usd"]


def test_an_assessment_without_searches_differs_only_in_the_searched_break_evens():
    """`searches=False` (the dashboard) gives the same placements, values, recommendation and
    explanation; the break-evens found by searching a range read None and empty."""
    full = assess(demo())
    quick = assess(demo(), searches=False)
    assert quick.break_even.link_bandwidth_gbps is None
    assert quick.break_even.link_bandwidth_flips == ()
    assert quick.break_even.per_link == ()
    assert quick.break_even.per_generation == ()
    assert full.break_even.link_bandwidth_flips or full.break_even.per_link
    assert quick.break_even.scarcity_multiplier == full.break_even.scarcity_multiplier
    assert quick.break_even.rent_per_month_usd == full.break_even.rent_per_month_usd
    assert replace(quick, break_even=full.break_even) == full
