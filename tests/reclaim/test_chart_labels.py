"""Charts name their bars and write money the one way (common/plots.py `money_short`)."""

import re

import numpy as np
import pytest

from common.plots import money_short
from reclaim.charts import Curve, crossings, curve_chart, flip_rows, tornado_chart


def texts(svg: str) -> list[str]:
    return re.findall(r">([^<>]+)</text>", svg)


def test_money_short_is_the_one_short_money_style():
    assert money_short(350e6) == "$350M"
    assert money_short(1.25e9) == "$1.25B"
    assert money_short(-12_000) == "-$12k"
    assert money_short(0) == "$0"
    assert money_short(2.5e6, "EUR") == "2.5M EUR"


def test_the_tornado_names_its_inputs_and_puts_money_on_its_value_axis():
    """Money runs along x; the bars carry the inputs' names (a money formatter on the bars'
    axis once replaced them with "$0", "$1")."""
    uncertainty = {
        "tornado": [
            {
                "knob": "scarcity_factor",
                "low": 0.5,
                "high": 2,
                "net_at_low_usd": -3e8,
                "net_at_high_usd": 5e8,
            },
            {
                "knob": "mfu_factor",
                "low": 0.8,
                "high": 1.2,
                "net_at_low_usd": -1e8,
                "net_at_high_usd": 1e8,
            },
            {
                "knob": "jitter_cv_shift",
                "low": -0.01,
                "high": 0.03,
                "net_at_low_usd": -1.5e8,
                "net_at_high_usd": -2.5e8,
            },
        ],
        "net_usd": {"base": -2e8},
    }
    labels = texts(tornado_chart(uncertainty))
    assert "scarcity × 0.5–2" in labels
    assert "kernel MFU × 0.8–1.2" in labels
    assert "jitter cv −0.01 to +0.03" in labels  # a shift of the scored value, signed
    assert "$500M" in labels
    assert "-$300M" in labels
    assert "$1" not in labels


def test_a_curve_that_crosses_rent_twice_marks_both_break_evens():
    """Value above rent only between 10 and 100: two break-evens, each marked and labelled."""
    x = np.geomspace(1.0, 1e4, 121)
    value = np.where((x > 10) & (x < 100), 2.0, 1.0)
    rent = np.full_like(x, 1.5)
    evens = crossings(x, value - rent)
    assert len(evens) == 2
    assert evens[0] == pytest.approx(10, rel=0.1)
    assert evens[1] == pytest.approx(100, rel=0.1)
    svg = curve_chart(Curve(x, value, rent, evens), xlabel="x", title="t", current=1.0, log=True)
    labels = texts(svg)
    assert sum(label.startswith("break-even ") for label in labels) == 2


def test_every_flip_of_a_part_in_words_per_link_and_per_generation():
    break_even = {
        "link_bandwidth_flips_gbps": [
            {"at": 400.0, "to": "reclaim"},
            {"at": 1600.0, "to": "keep_leased"},
            {"at": 2.5e6, "to": "reclaim"},
        ],
        "per_link": [
            {
                "link": 0,
                "a": "campus-1",
                "b": "campus-2",
                "flips": [{"at": 1600.0, "to": "reclaim"}],
            },
            {"link": 1, "a": "campus-2", "b": "campus-3", "flips": []},
        ],
        "per_generation": [
            {"accelerator": "H100", "speed_factor_flips": [{"at": 1.25, "to": "reclaim"}]},
        ],
    }
    names = {"campus-1": "Campus 1", "campus-2": "Campus 2"}
    rows = {r["what"]: r["flips"] for r in flip_rows(break_even, names)}
    assert rows == {
        "every inter-site link at one bandwidth": [
            "reclaim wins above 400 Gbit/s",
            "keeping it leased wins above 1.6 Tbit/s",
            "reclaim wins above 2.5 Pbit/s",
        ],
        "Campus 1 ↔ Campus 2 alone": ["reclaim wins above 1.6 Tbit/s"],
        "Campus 2 ↔ campus-3 alone": ["no flip from 1 Gbit/s to 1 Pbit/s"],
        "H100 speed": ["reclaim wins above 1.25× its peak"],
    }


def test_one_campus_has_no_link_rows():
    rows = flip_rows({"link_bandwidth_flips_gbps": [], "per_link": [], "per_generation": []}, {})
    assert rows == []


def test_a_schema_1_tornado_names_its_bars_as_schema_1_drew_them():
    """/1 ranges had no kind: four knobs multiplied the scenario's value, the others set it."""
    bars = [
        ("scarcity_factor", 0.5, 2.0),
        ("jitter_cv", 0.01, 0.05),
        ("link_bandwidth_factor", 0.5, 1.0),
        ("link_efficiency", 0.6, 0.95),
    ]
    uncertainty = {
        "schema": "landlord.uncertainty/1",
        "tornado": [
            {"knob": k, "low": lo, "high": hi, "net_at_low_usd": -2e6, "net_at_high_usd": 1e6}
            for k, lo, hi in bars
        ],
        "net_usd": {"base": -5e5},
    }
    labels = texts(tornado_chart(uncertainty))
    assert "scarcity × 0.5–2" in labels
    assert "jitter cv 0.01–0.05" in labels  # the value itself, not a shift of it
    assert "link bandwidth × 0.5–1" in labels
    assert "link efficiency 0.6–0.95" in labels
    assert not [label for label in labels if "_" in label or " to " in label]
