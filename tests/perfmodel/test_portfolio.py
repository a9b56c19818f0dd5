"""Valuation over a portfolio of internal workloads."""

import pytest

from clusters.perfmodel import Scenario, ScenarioError, assess

from .scenarios import demo_dict, two_site_dict


def _with_portfolio(d, entries):
    d = dict(d)
    d["portfolio"] = entries
    return Scenario.from_dict(d)


def test_portfolio_value_is_the_share_weighted_sum_of_each_workloads_best_use():
    d = two_site_dict()
    small = {"params": 7e9, "tokens_per_step": 2e6, "tensor_parallel": 1, "pipeline_parallel": 1}
    sc = _with_portfolio(
        d,
        [
            {"name": "frontier", "share": 0.5},
            {"name": "small jobs", "share": 0.5, "workload": small},
        ],
    )
    a = assess(sc)
    alone_big = assess(Scenario.from_dict(d)).internal_value_usd
    d_small = two_site_dict()
    d_small["workload"].update(small)
    alone_small = assess(Scenario.from_dict(d_small)).internal_value_usd
    assert a.internal_value_usd == pytest.approx(0.5 * alone_big + 0.5 * alone_small, rel=1e-9)
    doc = a.to_dict()
    assert [p["name"] for p in doc["portfolio"]] == ["frontier", "small jobs"]
    assert sum(p["weighted_value_usd"] for p in doc["portfolio"]) == pytest.approx(
        doc["internal_value_usd"], abs=0.05
    )
    # Round trip keeps the portfolio.
    assert Scenario.from_dict(sc.to_dict()) == sc


def test_a_portfolio_moves_the_demo_value_between_its_workloads():
    """Time-sharing the demo capacity between its frontier job and a larger-batch variant
    (4x the tokens per step: less bubble and exposed sync per FLOP) values it between the two,
    by shares. The model runs each workload as one synchronous job in its best placement;
    many concurrent small jobs are not modelled."""
    d = demo_dict()
    frontier = assess(Scenario.from_dict(d)).internal_value_usd
    big = {"tokens_per_step": 4 * d["workload"]["tokens_per_step"], "microbatches": 128}
    d_big = demo_dict()
    d_big["workload"].update(big)
    big_value = assess(Scenario.from_dict(d_big)).internal_value_usd
    sc = _with_portfolio(
        d,
        [
            {"name": "frontier", "share": 0.4},
            {"name": "large batch", "share": 0.6, "workload": big},
        ],
    )
    value = assess(sc).internal_value_usd
    print(f"frontier {frontier:,.0f}  large batch {big_value:,.0f}  portfolio {value:,.0f} USD")
    assert value == pytest.approx(0.4 * frontier + 0.6 * big_value, rel=1e-9)
    assert big_value > frontier


@pytest.mark.parametrize(
    "portfolio",
    [[], "x", [{"share": 0.7}, {"share": 0.7}], [{"share": 0}], [{"share": 0.5, "bad": 1}]],
)
def test_bad_portfolios_are_refused(portfolio):
    d = two_site_dict()
    d["portfolio"] = portfolio
    with pytest.raises(ScenarioError):
        Scenario.from_dict(d)
