"""Break-evens as intervals: every flip in the range, per link, per generation."""

import numpy as np
import pytest

from clusters.perfmodel import Scenario, assess, candidate_placements
from clusters.perfmodel.breakeven import (
    flips,
    link_bandwidth_break_even,
    link_bandwidth_flips,
    per_generation_flips,
    per_link_flips,
)
from clusters.perfmodel.valuation import evaluate_and_value

from .scenarios import two_site_dict


def test_every_flip_is_found_not_just_the_first():
    """Reclaim on [10, 100) and from 10⁴ on: three flips, each located to 1e-4."""

    def reclaim(x):
        return ((x >= 10) & (x < 100)) | (x >= 1e4)

    got = flips(reclaim, 1.0, 1e6)
    assert [f.to for f in got] == ["reclaim", "keep_leased", "reclaim"]
    assert [f.at for f in got] == pytest.approx([10, 100, 1e4], rel=1e-4)


def test_no_flip_gives_an_empty_tuple():
    assert flips(lambda x: np.zeros(x.shape, dtype=bool), 1.0, 1e6) == ()


def _value(sc, bw):
    pl = candidate_placements(sc)
    bws = np.full((1, 1, len(sc.links)), bw)
    _, val = evaluate_and_value(sc, pl, bandwidth_gbps=bws)
    return float(val.internal_value_usd[0])


def _flipping_two_sites():
    """Rent between the value at 1 Gbit/s and at 1 Pbit/s: the link decides."""
    d = two_site_dict()
    d["links"][0]["window_bytes"] = None
    d["links"][0]["handshake_rtts"] = 0
    d["economics"]["rent_per_month_usd"] = 0.0
    sc = Scenario.from_dict(d)
    low, high = _value(sc, 1.0), _value(sc, 1e6)
    assert high > low
    rent_total = (low + high) / 2
    d["economics"]["rent_per_month_usd"] = rent_total / (12 * 90 / 365)
    return Scenario.from_dict(d)


def test_link_flips_agree_with_the_first_flip_break_even():
    sc = _flipping_two_sites()
    pl = candidate_placements(sc)
    got = link_bandwidth_flips(sc, pl)
    assert len(got) >= 1
    assert got[0].to == "reclaim"
    assert got[0].at == pytest.approx(link_bandwidth_break_even(sc, pl), rel=1e-3)
    # Just below keeps leasing, just above reclaims.
    rent = sc.economics.rent_per_month_usd * 12 * 90 / 365
    assert _value(sc, got[0].at * 0.999) < rent < _value(sc, got[0].at * 1.001)


def test_per_link_and_per_generation_are_reported_in_the_assessment():
    sc = _flipping_two_sites()
    doc = assess(sc).to_dict()
    be = doc["break_even"]
    assert be["per_link"][0]["a"] == "east"
    assert be["per_link"][0]["b"] == "west"
    assert be["per_link"][0]["flips"][0]["to"] == "reclaim"
    gens = {g["accelerator"]: g["speed_factor_flips"] for g in be["per_generation"]}
    assert set(gens) == {"H100", "A100", "B200"}
    # The scenario sits between the two regimes, so some generation's speed flips it.
    assert any(gens.values())


def test_per_link_only_moves_one_link():
    """Three sites in a ring; upgrading the one slow link flips, the fast ones do not."""
    d = two_site_dict()
    d["pools"].append(
        {"site": "north", "accelerator": "H100", "gpus": 2048, "fabric_gbps_per_gpu": 400}
    )
    fast = {"bandwidth_gbps": 100_000, "route_km": 40, "handshake_rtts": 0}
    d["links"] = [
        {"a": "east", "b": "west", "bandwidth_gbps": 10, "route_km": 40, "handshake_rtts": 0},
        {"a": "west", "b": "north", **fast},
        {"a": "north", "b": "east", **fast},
    ]
    d["economics"]["rent_per_month_usd"] = 0.0
    sc = Scenario.from_dict(d)
    pl = candidate_placements(sc)
    # Rent between the value with the slow link as is and with it fast.
    low = _value_links(sc, pl, [10, 1e5, 1e5])
    high = _value_links(sc, pl, [1e5, 1e5, 1e5])
    assert high > low
    d["economics"]["rent_per_month_usd"] = (low + high) / 2 / (12 * 90 / 365)
    sc = Scenario.from_dict(d)
    result = dict(per_link_flips(sc, candidate_placements(sc)))
    assert result[0]
    assert result[0][0].to == "reclaim"
    assert result[0][0].at > 10
    print({i: [(round(f.at, 1), f.to) for f in fl] for i, fl in result.items()})


def _value_links(sc, pl, bws):
    _, val = evaluate_and_value(sc, pl, bandwidth_gbps=np.array(bws, dtype=float)[None, None, :])
    return float(val.internal_value_usd[0])


def test_per_generation_flip_is_the_speed_factor_where_value_crosses_rent():
    sc = _flipping_two_sites()
    pl = candidate_placements(sc)
    gens = dict(per_generation_flips(sc, pl))
    for model, fl in gens.items():
        for f in fl:
            assert 0.1 <= f.at <= 10.0, model
